"""Dataset snapshots: every dataset that trains a registered model, kept once by its sha256.

A snapshot is the exact Parquet file the training run read (the ingest step's artifact, written by
`dataio.write_frame`, so the same frame always gives the same bytes), stored under
`data/<sha256>/data.parquet` with `data/<sha256>/metadata.json` beside it (rows, columns, source,
parents, created_at). The sha256 is the one lineage already records as `data_sha256`, so a model
version points at its training rows without another identifier, and rebuilding a model is
`kfops runs data SHA --out FILE` then `kfops run --source FILE --seed S`.

Writes are create-only (content addressing: an existing snapshot is by definition the same
bytes, so a second writer has nothing to add). Reads verify the sha256. Retention (`prune`)
deletes snapshots older than a cut-off that no registered version's lineage names.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from kfops import dataio, errors
from kfops import registry as registry_mod
from kfops.store import base

ROOT = "data"
DATA_FILE = "data.parquet"
METADATA_FILE = "metadata.json"
MIN_PREFIX = 8


def data_key(sha256: str) -> str:
    """Store key of a snapshot's Parquet file."""
    return f"{ROOT}/{sha256}/{DATA_FILE}"


def metadata_key(sha256: str) -> str:
    """Store key of a snapshot's metadata."""
    return f"{ROOT}/{sha256}/{METADATA_FILE}"


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One stored dataset: its sha256, where it is, and what is known about it."""

    sha256: str
    uri: str
    rows: int
    created: bool  # False: it was already in the store
    metadata: dict[str, Any]


def put_file(
    store: base.Store, path: str | os.PathLike, facts: Mapping[str, Any] | None = None
) -> Snapshot:
    """Stores a Parquet file as a snapshot (once) and returns it.

    Args:
        store: the store that holds the registry.
        path: a Parquet file written by `dataio.write_frame`.
        facts: JSON facts kept in the metadata (source, parents, policy...); ignored when the
            snapshot already exists, since its first writer described the same bytes.

    Raises:
        DataError: the file is not readable Parquet.
    """
    sha = dataio.sha256_file(path)
    if store.exists(metadata_key(sha)):
        meta = read_metadata(store, sha)
        return Snapshot(sha, store.url_for(data_key(sha)), int(meta.get("rows", 0)), False, meta)
    rows, columns = _parquet_shape(path)
    meta = {
        **dict(facts or {}),
        "sha256": sha,
        "rows": rows,
        "columns": columns,
        "bytes": Path(path).stat().st_size,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    store.put_file(data_key(sha), path)
    try:  # metadata last and create-only: its presence means the data is complete
        store.put_bytes_if(metadata_key(sha), _json(meta), None)
    except base.PreconditionFailed:
        meta = read_metadata(store, sha)  # a concurrent writer stored the same bytes first
        return Snapshot(sha, store.url_for(data_key(sha)), int(meta["rows"]), False, meta)
    return Snapshot(sha, store.url_for(data_key(sha)), rows, True, meta)


def _parquet_shape(path: str | os.PathLike) -> tuple[int, list[str]]:
    """Rows and column names from the Parquet footer, without reading a row.

    Reading the frame for them converted 800k training rows to Python objects in a 1M run's
    push step (~0.7 CPU s). write_frame keeps no index, so the footer's columns are the frame's.

    Raises:
        DataError: the file is not readable Parquet.
    """
    import pyarrow.parquet as pq

    with dataio.parquet_errors(path):
        parquet = pq.ParquetFile(path)
    return int(parquet.metadata.num_rows), [str(c) for c in parquet.schema_arrow.names]


def put_frame(
    store: base.Store, frame: pd.DataFrame, facts: Mapping[str, Any] | None = None
) -> Snapshot:
    """Writes a frame deterministically and stores it as a snapshot (see `put_file`)."""
    with tempfile.TemporaryDirectory(prefix="kfops-snapshot-") as tmp:
        path = Path(tmp, DATA_FILE)
        dataio.write_frame(frame, path)
        return put_file(store, path, facts)


def resolve(store: base.Store, sha256: str) -> str:
    """The full sha256 of the one snapshot whose hash starts with `sha256`.

    Raises:
        ConfigError: fewer than 8 hex characters, or the prefix matches several snapshots.
        NotFound: no snapshot matches.
    """
    wanted = (sha256 or "").strip().lower()
    if len(wanted) < MIN_PREFIX:
        raise errors.ConfigError(
            f"data hash {sha256!r} is too short: give at least {MIN_PREFIX} hex characters"
        )
    found = sorted({_sha_of(k) for k in store.list(f"{ROOT}/{wanted}")} - {""})
    found = [s for s in found if s.startswith(wanted) and store.exists(metadata_key(s))]
    if not found:
        raise errors.NotFound(f"no dataset snapshot {sha256!r} in {store.uri}")
    if len(found) > 1:
        raise errors.ConfigError(f"data hash {sha256!r} matches {len(found)} snapshots: give more")
    return found[0]


def read_metadata(store: base.Store, sha256: str) -> dict[str, Any]:
    """A snapshot's metadata.

    Raises:
        NotFound: no such snapshot.
    """
    try:
        return json.loads(store.get_bytes(metadata_key(sha256)))
    except errors.NotFound as e:
        raise errors.NotFound(f"no dataset snapshot {sha256} in {store.uri}") from e


def export(store: base.Store, sha256: str, out: str | os.PathLike) -> dict[str, Any]:
    """Copies a snapshot's Parquet file to `out` after checking its sha256; returns its metadata.

    Raises:
        NotFound: no such snapshot.
        IntegrityError: the stored bytes do not hash to their name.
    """
    sha = resolve(store, sha256)
    meta = read_metadata(store, sha)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kfops-snapshot-", dir=out.parent) as tmp:
        staged = Path(tmp, DATA_FILE)
        store.get_file(data_key(sha), staged)
        got = dataio.sha256_file(staged)
        if got != sha:
            raise errors.IntegrityError(
                f"snapshot {store.url_for(data_key(sha))} hashes to {got}, not {sha}"
            )
        os.replace(staged, out)
    return meta


def read(store: base.Store, sha256: str) -> pd.DataFrame:
    """A snapshot as a frame, its sha256 verified.

    Raises:
        NotFound: no such snapshot.
        IntegrityError: the stored bytes do not hash to their name.
    """
    with tempfile.TemporaryDirectory(prefix="kfops-snapshot-") as tmp:
        export(store, sha256, Path(tmp, DATA_FILE))
        return dataio.read_frame(Path(tmp, DATA_FILE))


def listing(store: base.Store) -> list[dict[str, Any]]:
    """Every complete snapshot's metadata, oldest first."""
    shas = sorted({_sha_of(k) for k in store.list(f"{ROOT}/")} - {""})
    metas = [read_metadata(store, s) for s in shas if store.exists(metadata_key(s))]
    return sorted(metas, key=lambda m: (m.get("created_at") or "", m["sha256"]))


def referenced(registry: registry_mod.Registry) -> set[str]:
    """sha256 of every dataset a registered version's lineage names (its training data)."""
    used = set()
    for name in registry.models():
        for version in registry.versions(name):
            lineage = (registry.manifest(name, version).get("metadata") or {}).get("lineage") or {}
            used.update(str(s) for s in _lineage_shas(lineage) if s)
    return used


def _lineage_shas(lineage: Mapping[str, Any]) -> Iterable[Any]:
    yield lineage.get("data_sha256")
    yield from (lineage.get("data_parents") or [])


def prune(
    store: base.Store, older_than_days: float, *, now: dt.datetime | None = None, dry_run=False
) -> list[str]:
    """Deletes snapshots older than the cut-off that no registered version names; returns them.

    A snapshot a version was trained on (or whose snapshot derives from it, `data_parents`) is
    kept whatever its age: deleting it would make that model impossible to rebuild.

    Raises:
        ConfigError: a negative age.
    """
    if not older_than_days >= 0:
        raise errors.ConfigError(f"older-than days must be >= 0, got {older_than_days}")
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=older_than_days)
    keep = referenced(registry_mod.Registry(store))
    doomed = []
    for meta in listing(store):
        created = dt.datetime.fromisoformat(meta["created_at"])
        if meta["sha256"] not in keep and created < cutoff:
            doomed.append(meta["sha256"])
    if not dry_run:
        for sha in doomed:  # metadata first: a half-deleted snapshot is never listed as complete
            store.delete(metadata_key(sha))
            store.delete(data_key(sha))
    return doomed


def _sha_of(key: str) -> str:
    parts = key.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == ROOT else ""


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=2, default=str).encode() + b"\n"


def keep_training_data(
    store: base.Store, path: str | os.PathLike, facts: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Stores a model's training data as a snapshot; returns the lineage keys pointing at it.

    `data_parents` are the snapshots this one was built from (a retraining snapshot names the
    champion's), so a version's lineage shows both of its data parents.
    """
    snap = put_file(store, path, facts)
    return {
        "data_sha256": snap.sha256,
        "data_snapshot": data_key(snap.sha256),
        "data_parents": list(snap.metadata.get("parents") or []),
    }
