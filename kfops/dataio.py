"""Read and write frames, JSON and text on local paths; sha256 of content.

Artifacts inside a pipeline are always Parquet (KFP artifact paths carry no extension), so
`write_frame`/`read_frame` default to Parquet. Reading other source formats is ingest's job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfops import errors

if TYPE_CHECKING:
    import pandas as pd

# pandas and pyarrow are imported where frames are read or written: most steps and commands
# use this module for JSON and digests only, and a step process pays every import it makes.

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so memory stays flat."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes via a temp file in the same directory and renames it, so readers never see half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_frame(df: pd.DataFrame, path: str | os.PathLike) -> dict[str, Any]:
    """Writes a frame as Parquet and returns artifact metadata: rows, columns, sha256.

    The file is written deterministically (no pandas index, fixed compression), so the same frame
    gives the same sha256.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, compression="snappy")
    return {
        "rows": int(len(df)),
        "columns": [str(c) for c in df.columns],
        "sha256": sha256_file(path),
    }


def write_table_as_frame(
    table: Any, path: str | os.PathLike, to_frame: Callable[[Any], pd.DataFrame]
) -> dict[str, Any]:
    """Writes the file `write_frame(to_frame(table), path)` writes, byte for byte.

    The pandas round trip (to_frame, then back to Arrow) is skipped when it provably leaves the
    table as it is: no stored index but an unnamed range; every column int, uint, float32/64,
    bool, string or timestamp[ns] without a zone; no nulls in int or bool columns (they would
    become float/object), no NaN in float columns (it would become null), no timestamp equal to
    NaT's int64. The schema (pandas metadata included) is the one the round trip gives for the first
    rows. Anything else takes the round trip.
    """
    same = _round_trip_free(table, to_frame)
    if same is None:
        return write_frame(to_frame(table), path)
    return _write_table(same, path)


def _round_trip_free(table: Any, to_frame: Callable[[Any], pd.DataFrame]) -> Any:
    """`table` as `pa.Table.from_pandas(to_frame(table))` would give it, or None if unsure."""
    import pyarrow as pa
    import pyarrow.compute as pc

    meta = (table.schema.metadata or {}).get(b"pandas")
    stored = json.loads(meta).get("index_columns", []) if meta is not None else []
    if any(not isinstance(i, dict) or i.get("kind") != "range" or i.get("name") for i in stored):
        return None  # a stored index that is data: to_frame turns it into a column
    if table.num_rows == 0 or table.num_columns == 0:
        return None
    probe = pa.Table.from_pandas(to_frame(table.slice(0, 1024)), preserve_index=False)
    if probe.column_names != table.column_names:
        return None
    for field, column, made in zip(table.schema, table.columns, probe.schema, strict=True):
        kind = field.type
        if made.type != kind:
            return None
        if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
            if column.null_count:
                return None
        elif kind in (pa.float32(), pa.float64()):
            if pc.any(pc.is_nan(column)).as_py():
                return None
        elif kind == pa.timestamp("ns"):  # datetime64[ns]; int64's minimum would read as NaT
            low = pc.min(column.cast(pa.int64())).as_py()
            if low is not None and low == -(1 << 63):
                return None
        elif kind == pa.string():
            if column.nbytes > 1 << 30:  # from_pandas would split it into chunks
                return None
        else:
            return None
    return pa.Table.from_arrays(table.combine_chunks().columns, schema=probe.schema)


def _write_table(table: Any, path: str | os.PathLike) -> dict[str, Any]:
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")
    return {
        "rows": int(table.num_rows),
        "columns": [str(c) for c in table.column_names],
        "sha256": sha256_file(path),
    }


def read_frame(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a Parquet file written by `write_frame`.

    Raises:
        DataError: the file is missing or not Parquet.
    """
    import pandas as pd

    with parquet_errors(path):
        return pd.read_parquet(path)


@contextlib.contextmanager
def parquet_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turns a missing or unreadable Parquet file into one DataError line naming it.

    For every reader of a `write_frame` file (whole frame, chosen rows, footer only).
    """
    import pyarrow as pa

    try:
        yield
    except FileNotFoundError as e:
        raise errors.DataError(f"no such file: {path}") from e
    except (pa.ArrowInvalid, OSError) as e:
        raise errors.DataError(f"cannot read Parquet {path}: {e}") from e


def write_json(obj: Any, path: str | os.PathLike) -> str:
    """Writes JSON (sorted keys, 2-space indent, atomic) and returns its sha256."""
    data = json.dumps(obj, indent=2, sort_keys=True, default=_json_default).encode() + b"\n"
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def read_json(path: str | os.PathLike) -> Any:
    """Reads a JSON file.

    Raises:
        DataError: missing file or invalid JSON.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise errors.DataError(f"no such file: {path}") from e
    except json.JSONDecodeError as e:
        raise errors.DataError(f"invalid JSON in {path}: {e}") from e


def write_text(path: str | os.PathLike, text: str) -> str:
    """Writes UTF-8 text atomically and returns its sha256."""
    data = text.encode("utf-8")
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def _json_default(obj: Any) -> Any:
    """Makes numpy scalars, arrays and timestamps JSON-serialisable."""
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, set | frozenset | tuple):
        return sorted(obj, key=str)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
