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
from collections.abc import Iterator
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
