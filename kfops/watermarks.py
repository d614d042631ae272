"""Per-source watermarks in the store, so incremental runs read each partition exactly once.

One object per source, `sources/<key>/state.json`, holds what successful runs consumed
(`committed`: partition -> facts, or a SQL source's largest incremental value) and what runs in
flight have claimed (`pending`: run id -> its partitions). A run claims its new partitions with a
compare-and-swap write of that object (`Store.put_bytes_if`), so of two runs started together
exactly one gets each partition. A claim becomes committed only when its run ended `succeeded`
(the run's end.json, written by the exit step); a failed run's claim is dropped, so its
partitions are read again by the next run. The fold happens at the next claim (`settle`): the
watermark never advances for a run that did not complete.

The rows of each consumed partition are cached in the store (`sources/<key>/parts/*.parquet`),
so the training snapshot is the previous snapshot plus the new partitions without re-reading old
ones from the source, windowed by `retention` (the newest N partitions, by partition path).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import json
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kfops import errors
from kfops.runs import records
from kfops.store import base

PREFIX = "sources/"
# A claim whose run has written no outcome for this long belongs to a run that died without its
# exit step (pod deleted); its partitions are released.
STALE_SECONDS = 24 * 3600
_ATTEMPTS = 20


def source_key(identity: str) -> str:
    """The store key of a source: readable stem plus a hash of the full identity."""
    stem = "".join(c if c.isalnum() else "-" for c in identity.split("://")[-1])[-40:].strip("-")
    return f"{stem or 'source'}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


def _state_key(key: str) -> str:
    return f"{PREFIX}{key}/state.json"


def part_key(key: str, partition: str) -> str:
    """Where a consumed partition's rows are cached."""
    return f"{PREFIX}{key}/parts/{hashlib.sha256(partition.encode()).hexdigest()}.parquet"


@dataclasses.dataclass
class Claim:
    """What one run claimed: new partitions (path -> facts) and, for SQL, the value range."""

    run_id: str
    key: str
    partitions: dict[str, dict[str, Any]]
    committed: dict[str, dict[str, Any]]
    after: Any = None

    def summary(self, snapshot: list[str], rows: int, new_rows: int) -> dict[str, Any]:
        """The facts a run record keeps about an incremental read."""
        return {
            "watermark": self.key,
            "new_partitions": len(self.partitions),
            "new_rows": new_rows,
            "previous_partitions": len(self.committed),
            "snapshot_partitions": len(snapshot),
            "snapshot_rows": rows,
            "after": self.after,
        }


def read_state(store: base.Store, key: str) -> tuple[dict[str, Any], str | None]:
    """The source's state and its tag (None when no run has claimed anything yet)."""
    try:
        data, tag = store.get_bytes_tagged(_state_key(key))
    except errors.NotFound:
        return {"committed": {}, "pending": {}, "value": None}, None
    return json.loads(data), tag


def committed(store: base.Store, key: str) -> dict[str, Any]:
    """The watermark as successful runs left it (claims of finished runs folded in)."""
    state, _ = read_state(store, key)
    settle(store, state)
    return {"partitions": state["committed"], "value": state.get("value")}


def settle(store: base.Store, state: dict[str, Any], now: float | None = None) -> None:
    """Folds claims of runs that succeeded into `committed`; drops those of failed or dead runs."""
    now = time.time() if now is None else now
    for run_id, claim in list(state["pending"].items()):
        status = _run_status(store, run_id)
        if status == "succeeded":
            state["committed"].update(claim["partitions"])
            if claim.get("value") is not None:
                state["value"] = claim["value"]
            del state["pending"][run_id]
        elif status == "failed" or now - claim["claimed_at"] > STALE_SECONDS:
            del state["pending"][run_id]


def _run_status(store: base.Store, run_id: str) -> str | None:
    try:
        end = records.decode(store.get_bytes(records.end_key(run_id)))
    except errors.NotFound:
        return None
    return (end or {}).get("status")


def claim(
    store: base.Store,
    key: str,
    run_id: str,
    choose: Callable[[dict[str, Any], set[str], Any], dict[str, dict[str, Any]]],
) -> Claim:
    """Claims what `choose` picks from what no successful or running run consumed.

    `choose(committed, reserved, value)` gets the committed partitions, the partitions claimed by
    runs still in flight, and the committed SQL value, and returns the new partitions. The claim
    is written with compare-and-swap; a lost race re-reads and chooses again.

    Raises:
        ConfigError: this run already claimed from this source (a retried ingest: its claim is
            reused instead), handled here by returning the earlier claim.
        StorageError: the state kept changing under us.
    """
    for _ in range(_ATTEMPTS):
        state, tag = read_state(store, key)
        settle(store, state)
        mine = state["pending"].get(run_id)
        if mine is not None:  # a retried step of the same run: the same partitions again
            return Claim(run_id, key, mine["partitions"], state["committed"], mine.get("after"))
        reserved = {p for c in state["pending"].values() for p in c["partitions"]}
        partitions = choose(state["committed"], reserved, state.get("value"))
        state["pending"][run_id] = {
            "partitions": partitions,
            "claimed_at": time.time(),
            "claimed": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "after": state.get("value"),
        }
        try:
            store.put_bytes_if(_state_key(key), _encode(state), tag)
        except base.PreconditionFailed:
            continue
        return Claim(run_id, key, partitions, state["committed"], state.get("value"))
    raise errors.StorageError(f"watermark {key}: changed under us {_ATTEMPTS} times; retry")


def set_value(store: base.Store, key: str, run_id: str, value: Any) -> None:
    """Records the largest incremental value a run read in its claim (committed with it)."""
    for _ in range(_ATTEMPTS):
        state, tag = read_state(store, key)
        state["pending"][run_id]["value"] = value
        try:
            store.put_bytes_if(_state_key(key), _encode(state), tag)
            return
        except base.PreconditionFailed:
            continue
    raise errors.StorageError(f"watermark {key}: changed under us {_ATTEMPTS} times; retry")


def window(partitions: list[str], retention: int) -> list[str]:
    """The newest `retention` partitions by path (hive dates sort in time order); 0 keeps all."""
    ordered = sorted(partitions)
    return ordered[-retention:] if retention > 0 else ordered


def put_part(store: base.Store, key: str, partition: str, table: pa.Table) -> None:
    """Caches a consumed partition's rows."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    store.put_bytes(part_key(key, partition), buffer.getvalue())


def get_part(store: base.Store, key: str, partition: str) -> pa.Table:
    """A cached partition's rows.

    Raises:
        StorageError: the cache object is missing (the store was pruned by hand).
    """
    try:
        return pq.read_table(io.BytesIO(store.get_bytes(part_key(key, partition))))
    except errors.NotFound as e:
        raise errors.StorageError(
            f"watermark {key}: the cached rows of {partition} are missing from the store; "
            f"remove {_state_key(key)} to start this source over"
        ) from e


def _encode(state: dict[str, Any]) -> bytes:
    return json.dumps(state, sort_keys=True, default=str).encode()
