"""Reads a window of a model's inference logs from the store.

Logs are Parquet files under `logs/<model>/<YYYY-MM-DD>/<HHMMSS>-<uuid>.parquet`. The date folder
lets a time window skip whole days without opening them, and reading only the needed columns
keeps wide logs cheap.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kfops import errors, logschema
from kfops.monitor import rules
from kfops.store import base

# Ordinal of a row within its request (0-based). The server logs one request id for every row of
# a batched request, so delayed labels join on (kfops_request_id, kfops_row). Derived on read.
ROW = "kfops_row"


def read_window(
    store: base.Store,
    model: str,
    window: rules.Window,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The logged rows of `model` inside `window`, oldest first.

    Args:
        store: where the server writes its logs.
        model: registered model name.
        window: time range and/or last-N-rows bound.
        columns: read only these columns (the model's features plus the `kfops_*` metadata).
            Every file must hold every requested feature; metadata columns may be absent.
            `kfops_row` (see ROW) is added whenever the request id is read.

    Returns:
        A frame sorted by `kfops_timestamp`; empty (with the requested columns) when the window
        holds no rows, so callers can report "no data in window" instead of crashing.

    Raises:
        SchemaViolation: a log file lacks requested feature columns (names them and the file).
        DataError: a log file is not readable Parquet.
    """
    keys = [k for k in _keys_in_days(store, model, window) if k.endswith(".parquet")]
    if window.last_rows is not None:
        keys = keys[::-1]  # newest first, so reading can stop once enough rows are in
    frames, rows = [], 0
    for key in keys:
        frame = _within(_read(store, key, columns), window)
        frames.append(frame)
        rows += len(frame)
        if window.last_rows is not None and rows >= window.last_rows:
            break
    if rows == 0:
        return pd.DataFrame(columns=list(columns) if columns is not None else [])
    out = pd.concat([f for f in frames if len(f)], ignore_index=True)
    if logschema.TIMESTAMP in out.columns:
        out = out.sort_values(logschema.TIMESTAMP, kind="stable", ignore_index=True)
    if window.last_rows is not None:
        out = out.tail(window.last_rows).reset_index(drop=True)
    return out


def _keys_in_days(store: base.Store, model: str, window: rules.Window) -> list[str]:
    """Log keys whose date folder can overlap the window, in chronological order.

    The server names a file by the day it writes it, which is the day of its rows or, for rows
    buffered over midnight, the day after; hence the one-day slack at the end.
    """
    prefix = logschema.log_prefix(model)
    first = window.start.date() if window.start else None
    last = window.end.date() + dt.timedelta(days=1) if window.end else None
    keys = []
    for key in store.list(prefix):
        day = _day_of(key[len(prefix) :])
        if day is None:
            keys.append(key)  # not date-partitioned: cannot skip it, the row filter decides
        elif (first is None or day >= first) and (last is None or day <= last):
            keys.append(key)
    return sorted(keys)


def _day_of(rel: str) -> dt.date | None:
    folder, sep, _ = rel.partition("/")
    if not sep:
        return None
    try:
        return dt.date.fromisoformat(folder)
    except ValueError:
        return None


def _read(store: base.Store, key: str, columns: Sequence[str] | None) -> pd.DataFrame:
    try:
        parquet = pq.ParquetFile(pa.BufferReader(store.get_bytes(key)))
    except (pa.ArrowInvalid, OSError) as e:
        raise errors.DataError(f"cannot read inference log {store.url_for(key)}: {e}") from e
    if columns is None:
        return _with_row(parquet.read().to_pandas())
    present = set(parquet.schema_arrow.names)
    missing = [c for c in columns if c not in present and c not in logschema.META_COLUMNS]
    if missing:
        raise errors.SchemaViolation(
            ", ".join(missing),
            "present in the inference log",
            f"{store.url_for(key)} lacks {missing}; it holds {sorted(present)}",
        )
    return _with_row(parquet.read(columns=[c for c in columns if c in present]).to_pandas())


def _with_row(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers rows within each request; a request's rows sit together, in order, in one file."""
    if logschema.REQUEST_ID in frame.columns:
        frame[ROW] = frame.groupby(logschema.REQUEST_ID, sort=False).cumcount().astype("int64")
    return frame


def _within(frame: pd.DataFrame, window: rules.Window) -> pd.DataFrame:
    if (window.start is None and window.end is None) or logschema.TIMESTAMP not in frame:
        return frame
    ts = pd.to_datetime(frame[logschema.TIMESTAMP], utc=True)
    keep = pd.Series(True, index=frame.index)
    if window.start is not None:
        keep &= ts >= pd.Timestamp(window.start)
    if window.end is not None:
        keep &= ts < pd.Timestamp(window.end)
    return frame[keep]


def to_bytes(frame: pd.DataFrame) -> bytes:
    """Serialises a frame as a log file would be (tests and traffic simulation use this)."""
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="snappy")
    return sink.getvalue()
