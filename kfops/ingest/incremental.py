"""Incremental reads: only what no successful run consumed, plus the cached previous snapshot.

Partitioned sources claim their new files; SQL sources claim the rows after the committed value
of the incremental column. Either way the claim is pending until the run ends `succeeded`
(kfops.watermarks), and the run trains on the previous snapshot plus the new data, windowed by
`retention`.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from kfops import config, errors, watermarks
from kfops.ingest import partitions, sql
from kfops.store import base


def _require(store: base.Store | None, run_id: str | None) -> None:
    if store is None or not run_id:
        raise errors.ConfigError(
            "incremental reads need a store and a run id (kfops run passes both)"
        )


def partitioned(
    source: str,
    *,
    settings: config.StoreSettings | None,
    store: base.Store | None,
    run_id: str | None,
    retention: int = 0,
    columns: list[str] | None = None,
) -> dict[str, Any]:
    """Claims and reads the new partitions; returns the snapshot table and the facts to record."""
    _require(store, run_id)
    where = partitions.locate(source, settings)
    listed = {p.path: p for p in partitions.list_partitions(where)}
    key = watermarks.source_key(f"{source}|{','.join(columns or [])}")

    def choose(committed, reserved, _value):
        fresh = [p for path, p in listed.items() if path not in committed and path not in reserved]
        return {p.path: {"size": p.size} for p in fresh}

    got = watermarks.claim(store, key, run_id, choose)
    new = [listed[path] for path in sorted(got.partitions) if path in listed]
    tables = partitions.read_each(where, new, columns)
    for path, table in tables.items():
        watermarks.put_part(store, key, path, table)
        got.partitions[path]["rows"] = table.num_rows
    kept = watermarks.window([*got.committed, *got.partitions], retention)
    snapshot = [tables[p] if p in tables else watermarks.get_part(store, key, p) for p in kept]
    return _result(got, kept, snapshot, sum(t.num_rows for t in tables.values()), where.shown)


def sql_source(
    source: str,
    query: str | None,
    incremental_column: str,
    *,
    store: base.Store | None,
    run_id: str | None,
    retention: int = 0,
) -> dict[str, Any]:
    """Reads the rows after the committed value of `incremental_column`; same claim rules.

    A SQL source cannot be split between two runs in flight (the second would not know where the
    first stops), so a claim while another run's is pending is refused.
    """
    _require(store, run_id)
    _, text, shown = sql.parse(source, query)
    key = watermarks.source_key(f"{shown}|{text}|{incremental_column}")

    def choose(committed, reserved, _value):
        if reserved:
            raise errors.StorageError(
                f"{shown}: another run is still reading this source incrementally "
                f"({sorted(reserved)[0]}); wait for it to end"
            )
        return {f"sql/{len(committed):08d}/{run_id}": {}}

    got = watermarks.claim(store, key, run_id, choose)
    unit = next(iter(got.partitions))
    read = sql.read(source, query, incremental_column=incremental_column, after=got.after)
    table = pa.Table.from_pandas(read.frame, preserve_index=False)
    watermarks.put_part(store, key, unit, table)
    got.partitions[unit].update(rows=read.rows, value=read.max_value)
    watermarks.set_value(store, key, run_id, read.max_value if read.rows else got.after)
    kept = watermarks.window([*got.committed, unit], retention)
    snapshot = [table if p == unit else watermarks.get_part(store, key, p) for p in kept]
    facts = _result(got, kept, snapshot, read.rows, shown)
    facts.update(query=read.query, max_value=read.max_value)
    return facts


def _result(got, kept, snapshot, new_rows, shown) -> dict[str, Any]:
    table = pa.concat_tables(snapshot, promote_options="permissive") if snapshot else None
    if table is None or table.num_rows == 0:
        raise errors.DataError(f"{shown}: no rows in the snapshot (no new or retained partitions)")
    summary = got.summary(kept, table.num_rows, new_rows)
    summary["new"] = sorted(got.partitions)[:50]
    return {"table": table, "summary": summary, "new_rows": new_rows}
