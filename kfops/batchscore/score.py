"""Scoring one shard, and the merge that checks every shard's rows arrived exactly once.

A shard predicts through what the server predicts through: the model's schema `Validator`
(same dtypes, same refusals) and `ServedModel.predict` with the compiled fast path
(kfops.serving.model.with_fast_path), so a batch prediction equals the online one for the same
row. Its output is one Parquet object per shard at a name fixed by the plan
(`part-<index>-of-<count>.parquet`), overwritten on a rerun, so rerunning a run is idempotent.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kfops import config, errors, ingest, parameters, registry, store
from kfops.batchscore import rows as ranges
from kfops.batchscore.plan import ROW_KEY, ScoreConfig
from kfops.ingest import partitions
from kfops.serving import model as served_model
from kfops.serving import validation
from kfops.store import Store

MANIFEST = "scored.json"  # not the registry's manifest.json: this one lists scored parts


def open_run(
    store_uri: str,
    source: str,
    out: str,
    format: str = "",  # noqa: A002 (IngestConfig's name)
    delimiter: str = "",
    query: str = "",
    **score: int,
) -> tuple[registry.Registry, config.StoreSettings, dict[str, str], ScoreConfig]:
    """What plan and shard steps both start from: the registry, S3 settings, checked options.

    Args:
        store_uri: the registry store.
        source: what to score.
        format: how to read it (IngestConfig, as are delimiter and query).
        delimiter: CSV/TSV field delimiter; "" sniffs it.
        query: SQL text for a database source.
        out: where the parts go.
        score: the ScoreConfig knobs the step takes (shards, chunk_rows), as KFP passed them.

    Returns:
        The registry, S3 settings, the read options and the checked ScoreConfig.

    Raises:
        ConfigError: a read or scoring option is wrong (IngestConfig's and ScoreConfig's checks).
    """
    read = parameters.build(ingest.IngestConfig, source=source, format=format,
                            delimiter=delimiter, query=query)  # fmt: skip
    cfg = parameters.build(ScoreConfig, out=out, **score)
    settings = config.StoreSettings.from_env()
    reg = registry.Registry(store.open_store(store_uri, settings))
    options = {"format": read.format, "delimiter": read.delimiter, "query": read.query}
    return reg, settings, options, cfg


def resolve_version(reg: registry.Registry, name: str, version: str) -> str:
    """The version to score with: `version`, or the champion when it is "".

    Raises:
        NotFound: no such version, or no champion.
    """
    if not version:
        champion = reg.champion(name)
        if champion is None:
            raise errors.NotFound(f"model {name!r} has no champion; pass a version")
        return champion
    if version not in reg.versions(name):
        raise errors.NotFound(f"model {name!r} has no version {version!r}")
    return version


def shard_of(item: dict) -> dict:
    """A plan entry as the plan wrote it: KFP carries JSON numbers as doubles (protobuf Value)."""
    ints = {k: int(item[k]) for k in ("index", "count", "offset", "rows")}
    segments = [[str(f), int(lo), int(hi)] for f, lo, hi in item["segments"]]
    return {**item, **ints, "segments": segments}


def part_key(index: int, count: int) -> str:
    """The object name of one shard's predictions (fixed by the plan: reruns overwrite)."""
    return f"part-{index:05d}-of-{count:05d}.parquet"


def load(reg: registry.Registry, name: str, version: str) -> served_model.ServedModel:
    """The model as the server holds it: sha256-verified, compiled and verified fast path."""
    loaded = reg.load(name, version)
    served = served_model.ServedModel(name, str(loaded.version), loaded.pipeline, loaded.schema)
    return served_model.with_fast_path(served)


def read_shard(
    source: str,
    shard: dict,
    settings: config.StoreSettings | None = None,
    order_by: Sequence[str] = (),
    **read: Any,
) -> pd.DataFrame:
    """The shard's rows of the source, in global row order; only they are read (rows.py).

    `order_by`: a SQL source's key columns, which fix the row order (`sql_key`).
    """
    frames = []
    if partitions.is_partitioned(source):
        where = partitions.locate(source, settings)
        known = {p.path: p for p in partitions.list_partitions(where)}
        for name, lo, hi in shard["segments"]:
            if name not in known:
                raise errors.DataError(f"{where.shown}{name} is gone since the plan was made")
            table, _ = partitions.read(where, [known[name]])
            frames.append(table.slice(lo, hi - lo).to_pandas())
    else:
        frames = [ranges.read_range(source, lo, hi, settings, read, order_by=order_by,
                                    planned=shard)[0]
                  for _, lo, hi in shard["segments"]]  # fmt: skip
    frame = pd.concat(frames, ignore_index=True) if len(frames) != 1 else frames[0]
    if len(frame) != shard["rows"]:
        raise errors.DataError(
            f"shard {shard['index']}: read {len(frame)} rows, the plan says {shard['rows']}; "
            "the source changed since the plan was made"
        )
    return frame.reset_index(drop=True)


def score_frame(
    served: served_model.ServedModel, frame: pd.DataFrame, shard: dict, chunk_rows: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Predictions for the shard's rows, and how many rows each path answered.

    Raises:
        DataError: a row breaks the model's schema (one line: the first problem, global rows).
    """
    key = _key_column(served)
    keys = frame[key].to_numpy() if key != ROW_KEY else np.arange(len(frame)) + shard["offset"]
    checker = validation.Validator(served.schema)
    labels, probability, paths = [], [], {}
    for start in range(0, len(frame), chunk_rows):
        part = frame.iloc[start : start + chunk_rows]
        arrays = _validated(checker, part, shard["offset"] + start)
        answer = served.predict(arrays, want_proba=served.has_proba)
        paths[answer.path] = paths.get(answer.path, 0) + len(part)
        labels.append(np.asarray(answer.predict))
        if answer.proba is not None:
            probability.append(_of_label(served, answer.predict, answer.proba))
    out = pd.DataFrame({key: keys, "prediction": np.concatenate(labels)})
    out["probability"] = np.concatenate(probability) if probability else np.nan
    out["model_name"], out["model_version"] = served.name, served.version
    out["scored_at"] = pd.Timestamp(shard["scored_at"])
    return out, paths


def sql_key(served: served_model.ServedModel) -> list[str]:
    """The columns a SQL source is ordered by: the id column, else every model input.

    Rows that tie on every input are scored identically, so the output does not depend on how
    the database orders them (kfops.batchscore.rows).
    """
    key = _key_column(served)
    return [key] if key != ROW_KEY else list(validation.Validator(served.schema).names)


def _key_column(served: served_model.ServedModel) -> str:
    ids = [c.name for c in served.schema.columns if c.role == "id"]
    return ids[0] if ids else ROW_KEY


def _validated(checker: validation.Validator, part: pd.DataFrame, first_row: int) -> dict:
    """The server's validation of a chunk; a refusal becomes one line with global row numbers."""
    columns = {}
    for name in checker.names:
        if name not in part.columns:
            raise errors.DataError(f"the source has no column {name!r} the model needs")
        col = part[name]
        columns[name] = col.astype(object).where(col.notna(), None).tolist()
    try:
        return checker.validate(columns, len(part)).arrays
    except errors.DataError as e:
        first = e.problems[0] if getattr(e, "problems", None) else None
        if first is None:
            raise
        rows = [first_row + r for r in first.rows]
        raise errors.DataError(
            f"column {first.field!r} {first.rule}: {first.detail} (rows {rows[:5]}, "
            f"{first.n_rows} in all)"
        ) from e


def _of_label(served, labels, proba) -> np.ndarray:
    """The probability of the predicted class, row by row."""
    index = {c: i for i, c in enumerate(served.classes)}
    cols = np.fromiter((index[v] for v in np.asarray(labels).tolist()), np.int64, len(labels))
    return np.asarray(proba)[np.arange(len(cols)), cols]


def write_part(out: Store, shard: dict, predictions: pd.DataFrame) -> dict[str, Any]:
    """Writes the shard's Parquet object; returns what the merge checks (rows, key range)."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(predictions, preserve_index=False), buffer)
    key = part_key(shard["index"], shard["count"])
    out.put_bytes(key, buffer.getvalue())
    return {"index": shard["index"], "key": key, "rows": len(predictions),
            "key_column": str(predictions.columns[0])}  # fmt: skip


def merge(out: Store, plan: list[dict], written: list[dict]) -> dict[str, Any]:
    """Checks the parts against the plan, removes stale parts, writes the manifest.

    Every planned part must exist with the planned rows, their total must equal the source's
    rows, and no row key may repeat. Parts of an earlier run with another shard count are
    deleted, so the prefix holds exactly what the manifest lists.

    Raises:
        IntegrityError: one line naming the first shard (or key) that does not add up.
    """
    plan = [shard_of(s) for s in plan]
    expected = {part_key(s["index"], s["count"]): s["rows"] for s in plan}
    reported = {w["key"]: int(w["rows"]) for w in written if w}
    key = next((w["key_column"] for w in written if w), ROW_KEY)
    present = set(out.list(""))
    for name, rows in expected.items():
        if name not in present:
            raise errors.IntegrityError(f"shard {name} is missing: expected {rows} rows")
        if reported.get(name) != rows:
            raise errors.IntegrityError(
                f"shard {name} wrote {reported.get(name)} rows, the plan says {rows}"
            )
    total = sum(s["rows"] for s in plan)
    if key == ROW_KEY:  # row numbers: each part must hold exactly its range; one part in memory
        for s in plan:
            got = _keys(out, part_key(s["index"], s["count"]), key).to_numpy()
            if not np.array_equal(got, np.arange(s["offset"], s["offset"] + s["rows"])):
                raise errors.IntegrityError(
                    f"{part_key(s['index'], s['count'])} does not hold rows {s['offset']} to "
                    f"{s['offset'] + s['rows'] - 1} in order"
                )
    else:  # an id column: unique across all parts, so every key is read
        found = pa.chunked_array([_keys(out, n, key) for n in sorted(expected)])
        if len(found) != total:
            raise errors.IntegrityError(f"{len(found)} rows written, the source has {total}")
        if pc.count_distinct(found).as_py() != total:
            raise errors.IntegrityError(f"duplicate row keys in column {key!r}")
    for stale in sorted(present - set(expected) - {MANIFEST}):
        if stale.startswith("part-"):
            out.delete(stale)
    manifest = {
        "rows": total, "key": key, "parts": sorted(expected),
        "version": plan[0]["version"], "scored_at": plan[0]["scored_at"],
    }  # fmt: skip
    out.put_bytes(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return manifest


def _keys(out: Store, name: str, key: str) -> pa.ChunkedArray:
    """One part's key column (read whole: Parquet seeks to its footer; an S3 stream cannot)."""
    return pq.read_table(pa.BufferReader(out.get_bytes(name)), columns=[key]).column(0)


def run_shard(
    reg: registry.Registry,
    name: str,
    source: str,
    shard: dict,
    out: Store,
    chunk_rows: int,
    settings: config.StoreSettings | None = None,
    **read: Any,
) -> dict[str, Any]:
    """Reads, scores and writes one shard; returns `write_part`'s facts and the paths used."""
    shard = shard_of(shard)
    served = load(reg, name, shard["version"])
    frame = read_shard(source, shard, settings, sql_key(served), **read)
    predictions, paths = score_frame(served, frame, shard, chunk_rows)
    return {**write_part(out, shard, predictions), "paths": paths, "fast": served.fast_note}
