"""Delayed labels: ground truth delivered after the fact, keyed by the request id the server logs.

The server logs every row it answers with `kfops_request_id` (the request's `x-request-id`, or
one it made up and returned) and `kfops_row` (the row's position in a batched request). Whoever
learns the truth later (a billing system, a reviewer) delivers `request_id, [row,] label` rows,
through `kfops labels add` or `POST /v2/models/<name>/labels` on the server. Each delivery is one
Parquet file in the store, `labels/<name>/<YYYY-MM-DD>/<HHMMSS>-<uuid>.parquet`, stamped with the
time it arrived (`kfops_label_received_at`); nothing is ever rewritten.

Rules (docs/CONTRACTS.md, "Delayed labels"):
- Within one delivery, the same (request_id, row) twice with different labels is refused (the
  deliverer contradicts itself); the identical pair twice counts once.
- Across deliveries, the latest delivery wins: a second delivery for a row is a correction.
- Late labels: a label can arrive any time after its request; it joins whenever a window that
  holds its request is read (monitor, retraining data), so a label that arrives after a
  monitoring run counts in the next one. A reader may fix `as_of` (only labels received before
  it count), which makes a built retraining snapshot independent of labels that arrive later.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kfops import errors, logschema, registry
from kfops.store import base

ROOT = "labels"
REQUEST_ID = logschema.REQUEST_ID
ROW = "kfops_row"  # the same name kfops.monitor.window derives when it reads the logs
LABEL = "kfops_label"
RECEIVED = "kfops_label_received_at"
COLUMNS = (REQUEST_ID, ROW, LABEL)
# Accepted input column names -> stored name (users write request_id, row, label).
_ALIASES = {"request_id": REQUEST_ID, "row": ROW, "label": LABEL}
MAX_ROWS = 1_000_000  # one delivery; larger ones are split by the caller


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One stored delivery: where it went, how many labels it held."""

    key: str
    rows: int
    collapsed: int  # identical (request_id, row, label) repeats counted once
    received_at: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dataclasses.asdict(self)


def prefix(name: str) -> str:
    """Store prefix of a model's label deliveries."""
    return f"{ROOT}/{name}/"


def normalise(frame: pd.DataFrame, label_column: str | None = None) -> tuple[pd.DataFrame, int]:
    """A delivery in stored form (kfops_request_id, kfops_row, kfops_label) and its repeats.

    Accepts `request_id` or `kfops_request_id`, optional `row` or `kfops_row` (default 0: one-row
    requests), and `label`, `kfops_label` or the model's label column name.

    Raises:
        SchemaViolation: a needed column is missing, a request id is empty, a row is not a
            non-negative integer, or a label is missing.
        DataError: the delivery is empty, too large, or gives one row two different labels.
    """
    renames = dict(_ALIASES)
    if label_column and label_column in frame.columns:
        renames[label_column] = LABEL
    out = frame.rename(columns={c: renames.get(c, c) for c in frame.columns})
    if out.columns.duplicated().any():
        raise errors.SchemaViolation(
            ", ".join(map(str, frame.columns)), "labels columns", "one column given twice"
        )
    if ROW not in out.columns:
        out[ROW] = 0
    missing = [c for c in COLUMNS if c not in out.columns]
    if missing:
        wanted = f"request_id, [row], label{f' (or {label_column})' if label_column else ''}"
        raise errors.SchemaViolation(
            ", ".join(missing), "labels columns", f"need {wanted}; got {list(frame.columns)}"
        )
    out = out[list(COLUMNS)].copy()
    if len(out) == 0 or len(out) > MAX_ROWS:
        raise errors.DataError(f"a delivery holds 1 to {MAX_ROWS} labels, got {len(out)}")
    _check_values(out)
    out[REQUEST_ID] = out[REQUEST_ID].astype(str)
    out[ROW] = out[ROW].astype("int64")
    before = len(out)
    out = out.drop_duplicates(keep="last").reset_index(drop=True)
    clash = out[out.duplicated([REQUEST_ID, ROW], keep=False)]
    if len(clash):
        shown = ", ".join(
            f"{r}/{i}" for r, i in clash[[REQUEST_ID, ROW]].drop_duplicates().values[:5]
        )
        raise errors.DataError(
            f"{len(clash)} labels give one (request_id/row) two different labels: {shown}; "
            "deliver one label per row (a later delivery corrects an earlier one)"
        )
    return out, before - len(out)


def _check_values(out: pd.DataFrame) -> None:
    ids = out[REQUEST_ID]
    empty = ids.isna() | (ids.astype(str).str.strip() == "")
    if empty.any():
        raise errors.SchemaViolation(
            REQUEST_ID, "non-empty", f"{int(empty.sum())} labels without a request id"
        )
    rows = pd.to_numeric(out[ROW], errors="coerce")
    bad = rows.isna() | (rows < 0) | (rows != rows.round())
    if bad.any():
        shown = out.loc[bad, ROW].head(5).tolist()
        raise errors.SchemaViolation(ROW, "integer >= 0", f"got {shown}")
    if out[LABEL].isna().any():
        shown = out.loc[out[LABEL].isna(), REQUEST_ID].head(5).tolist()
        raise errors.SchemaViolation(
            LABEL, "non-null", f"{int(out[LABEL].isna().sum())} labels are empty (requests {shown})"
        )


def deliver(
    store: base.Store,
    name: str,
    frame: pd.DataFrame,
    *,
    label_column: str | None = None,
    now: dt.datetime | None = None,
) -> Delivery:
    """Checks a delivery and stores it as one new file; returns where it went.

    Raises:
        ConfigError: an invalid model name.
        SchemaViolation, DataError: see `normalise`.
    """
    registry._check_name(name)  # noqa: SLF001 (the registry's one naming rule)
    out, collapsed = normalise(frame, label_column)
    when = now or dt.datetime.now(dt.UTC)
    stamp = pd.Timestamp(when)
    out[RECEIVED] = stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")
    key = f"{prefix(name)}{when:%Y-%m-%d}/{when:%H%M%S}-{uuid.uuid4().hex}.parquet"
    store.put_bytes(key, _parquet(out))
    return Delivery(key, len(out), collapsed, when.isoformat(timespec="seconds"))


def from_records(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A delivery given as JSON objects ({"request_id", "row"?, "label"}), as a frame.

    Raises:
        DataError: not a non-empty list of objects.
    """
    if not isinstance(records, list) or not records:
        raise errors.DataError('labels must be a non-empty list of {"request_id", "label"} objects')
    if not all(isinstance(r, dict) for r in records):
        raise errors.DataError('each label must be an object {"request_id", "row"?, "label"}')
    frame = pd.DataFrame.from_records(records)
    if ROW not in frame.columns and "row" in frame.columns:
        frame["row"] = frame["row"].fillna(0)
    return frame


def read(store: base.Store, name: str, *, as_of: dt.datetime | None = None) -> pd.DataFrame:
    """Every label of `name` received before `as_of` (default: all), the latest delivery winning.

    Returns:
        kfops_request_id, kfops_row, kfops_label, kfops_label_received_at; one row per
        (request_id, row); empty with those columns when nothing was delivered.

    Raises:
        DataError: a stored delivery is not readable Parquet.
    """
    frames = []
    for key in sorted(store.list(prefix(name))):
        if not key.endswith(".parquet"):
            continue
        try:
            frame = pq.read_table(pa.BufferReader(store.get_bytes(key))).to_pandas()
        except (pa.ArrowInvalid, OSError) as e:
            raise errors.DataError(f"cannot read labels {store.url_for(key)}: {e}") from e
        frames.append(frame)
    columns = [*COLUMNS, RECEIVED]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    out = pd.concat([f[columns] for f in frames], ignore_index=True)
    if as_of is not None:
        out = out[out[RECEIVED] < pd.Timestamp(as_of)]
    # Stable sort by arrival: within one instant, file (key) order; the last one wins.
    out = out.sort_values(RECEIVED, kind="stable")
    return out.drop_duplicates([REQUEST_ID, ROW], keep="last").reset_index(drop=True)


def join(traffic: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The logged rows that have a label, with `kfops_label` (and its arrival time) added.

    Raises:
        SchemaViolation: the traffic lacks kfops_request_id or kfops_row.
    """
    missing = [c for c in (REQUEST_ID, ROW) if c not in traffic.columns]
    if missing:
        raise errors.SchemaViolation(", ".join(missing), "labels join", "the logs need them")
    keys = labels[[REQUEST_ID, ROW, LABEL, RECEIVED]].astype({REQUEST_ID: str, ROW: "int64"})
    left = traffic.astype({REQUEST_ID: str, ROW: "int64"})
    return left.merge(keys, on=[REQUEST_ID, ROW], how="inner")


def _parquet(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="snappy")
    return sink.getvalue()
