"""Model registry on any `Store`: immutable versions with a sha256 manifest, and a champion pointer.

Layout (docs/CONTRACTS.md):
    models/<name>/<version>/<file>          model.joblib, schema.json, metrics.json, ...
    models/<name>/<version>/lease.json      while a push uploads: who holds this number, until when
    models/<name>/<version>/manifest.json   written LAST: sha256 and size of every file + metadata
    models/<name>/champion.json             written last of all: current version + rollback stack
    models/<name>/staged.json               versions staged for approval and their approvals

Concurrent pushers of one name are normal (KFP retries a step whose pod died while the first
attempt may still run), so nothing here assumes a single writer:
- A version number is reserved by creating its lease.json create-only (`Store.put_bytes_if`); the
  loser of a race moves to the next number. The holder renews the lease while it uploads.
- An incomplete version (files, no manifest) is reused, and its leftovers deleted, only by a pusher
  that took over its lease after it expired (compare-and-swap) or that found no lease at all:
  the files of a push that is still running are never touched.
- The manifest is written create-only, after a last renewal proves the lease is still ours.
- The champion pointer moves by compare-and-swap, retried on conflict: no promotion is lost.
A version is visible only once its manifest exists, and each object write is atomic, so a reader
sees the old champion or the new one, never a mix.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kfops import dataio, errors, modelio, schema
from kfops.store import base, lease

# The registry's file names, defined here only; every other module imports them.
MODEL_FILE = "model.joblib"
SCHEMA_FILE = "schema.json"
METRICS_FILE = "metrics.json"
BLESSING_FILE = "blessing.json"
LINEAGE_FILE = "lineage.json"
REFERENCE_FILE = "reference.parquet"
MODEL_CARD_FILE = "model_card.md"
MANIFEST_FILE = "manifest.json"
LEASE_FILE = "lease.json"
CHAMPION_FILE = "champion.json"
STAGED_FILE = "staged.json"  # versions waiting for approval, and who approved them (kfops.approval)
ROLLOUT_FILE = "rollout.json"  # the challenger beside the champion, past rollouts (kfops.rollout)
RESERVED_FILES = (MANIFEST_FILE, LEASE_FILE, CHAMPION_FILE)  # written by the registry itself
ROOT = "models"
MAX_PREVIOUS = 50  # rollback depth kept in the champion pointer
LEASE_SECONDS = 300.0  # a push that stops renewing for this long is presumed dead
MAX_ATTEMPTS = 200  # version numbers tried, or champion swaps retried, before giving up
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_VERSION = re.compile(r"^[1-9][0-9]{0,17}$")


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """A registered (complete) version."""

    name: str
    version: str
    uri: str
    manifest: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A version's pipeline and schema, loaded only after their sha256 matched the manifest."""

    name: str
    version: str
    pipeline: Any
    schema: schema.Schema
    manifest: dict[str, Any]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Registry:
    """Registers, lists, promotes and loads model versions in a store.

    Args:
        store: where the models live (local directory or S3); only the Store interface is used.
        clock: returns the current UTC time; injectable so tests get stable timestamps.
        lease_seconds: how long a push's reservation lasts without renewal (renewed every
            quarter of it while the push runs); leases compare wall clocks, never `clock`.
    """

    def __init__(
        self,
        store: base.Store,
        clock: Callable[[], datetime.datetime] = _utc_now,
        lease_seconds: float = LEASE_SECONDS,
    ):
        self.store, self._clock, self.lease_seconds = store, clock, lease_seconds

    def register(
        self,
        name: str,
        files: Mapping[str, str | os.PathLike],
        metadata: Mapping[str, Any] | None = None,
        version: str | None = None,
    ) -> ModelVersion:
        """Uploads `files` as a new version, then its manifest.

        Args:
            name: model name (letters, digits, '.', '_', '-').
            files: version file name (e.g. "model.joblib") -> local path.
            metadata: JSON-serialisable facts kept in the manifest (metrics, lineage...).
            version: explicit version number as a string; default: the next free one (the
                newest incomplete one if its push is dead, see module doc).

        Returns:
            The registered version with its manifest.

        Raises:
            ConfigError: bad name, version or file name; a file is missing; metadata not JSON.
            AlreadyExists: the version is already registered (versions are immutable), or
                another live push holds it.
            PreconditionFailed: this push's reservation was taken over (it stopped renewing
                it for lease_seconds); nothing of it became visible.
            StorageError: the store failed; the version stays incomplete and invisible.
        """
        _check_name(name)
        entries = {fname: _describe(fname, path) for fname, path in files.items()}
        if not entries:
            raise errors.ConfigError(f"register {name!r}: no files given")
        metadata = dict(metadata or {})
        _json_bytes(metadata)  # fail on bad metadata before reserving or uploading anything
        held = self._reserve(name, version)
        version = held.key.split("/")[2]
        manifest = {
            "name": name,
            "version": version,
            "created_at": self._now(),
            "files": entries,
            "metadata": metadata,
        }
        manifest_bytes = _json_bytes(manifest)
        try:
            with held.kept_alive():
                for fname, path in files.items():
                    held.check()  # never write on after another pusher took this number over
                    self.store.put_file(_key(name, version, fname), path)
                held.renew()  # the lease is fresh: nobody can take it before the manifest lands
                _create(self.store, _key(name, version, MANIFEST_FILE), manifest_bytes)
        except BaseException:
            held.release()  # our leftovers become reusable at once by the next push
            raise
        held.drop()
        manifest = json.loads(manifest_bytes)  # exactly what readers will see (plain JSON types)
        return ModelVersion(name, version, self.store.url_for(_key(name, version)), manifest)

    def sweep(self, name: str) -> list[str]:
        """Deletes the files of abandoned pushes: incomplete versions whose lease expired.

        A push killed before its manifest leaves invisible files under its number; a later push
        reuses that number only if it is the newest one. A live push is never touched: its lease
        cannot be taken. Returns the versions cleared, oldest first.
        """
        _check_name(name)
        present = self._present(name)
        cleared = []
        for version in sorted((v for v, done in present.items() if not done), key=int):
            held = self._claim(name, version)  # deletes the leftovers once the lease is ours
            if held is not None:
                held.drop()
                cleared.append(version)
        return cleared

    def models(self) -> list[str]:
        """Names with at least one complete version, sorted."""
        return sorted({n for n, _, done in self._scan(ROOT + "/") if done})

    def versions(self, name: str) -> list[str]:
        """Complete versions of a model, oldest first ([] for an unknown model)."""
        _check_name(name)
        return sorted({v for _, v, done in self._scan(_key(name) + "/") if done}, key=int)

    def manifest(self, name: str, version: str) -> dict[str, Any]:
        """The manifest of a complete version.

        Raises:
            NotFound: no such (complete) version; the message lists the existing ones.
            IntegrityError: the manifest is not valid JSON or lists unsafe file names.
        """
        return _parse_manifest(self._manifest_bytes(name, version), _key(name, version))

    def champion(self, name: str) -> str | None:
        """The champion version, or None when none was promoted."""
        pointer = self.champion_pointer(name)
        return None if pointer is None else pointer["version"]

    def champion_pointer(self, name: str) -> dict[str, Any] | None:
        """The whole champion.json (version, previous, updated_at, manifest_sha256), or None."""
        _check_name(name)
        try:
            data = self.store.get_bytes(_key(name, CHAMPION_FILE))
        except errors.NotFound:
            return None
        return _parse_pointer(data, _key(name, CHAMPION_FILE))

    def promote(self, name: str, version: str) -> dict[str, Any]:
        """Makes a complete version the champion; the old one is pushed on the rollback stack.

        Returns:
            The new champion pointer (unchanged if `version` already is the champion).

        Raises:
            NotFound: no such complete version.
        """
        manifest_sha = dataio.sha256_bytes(self._manifest_bytes(name, version))

        def change(current: dict | None) -> dict | None:
            if current is not None and current["version"] == version:
                return None
            stack = [] if current is None else [*current.get("previous", []), current["version"]]
            return self._pointer(version, stack[-MAX_PREVIOUS:], manifest_sha)

        return self._swap_champion(name, change)

    def rollback(self, name: str) -> str:
        """Makes the previous champion the champion again and returns its version.

        Raises:
            NotFound: there is no champion, or no previous one to go back to.
        """

        def change(current: dict | None) -> dict:
            if not current or not current.get("previous"):
                raise errors.NotFound(f"model {name!r} has no previous champion to roll back to")
            *rest, target = current["previous"]
            manifest_sha = dataio.sha256_bytes(self._manifest_bytes(name, target))
            return self._pointer(target, rest, manifest_sha)

        return self._swap_champion(name, change)["version"]

    def fetch(
        self, name: str, version: str, dest_dir: str | os.PathLike, files: list[str] | None = None
    ) -> Path:
        """Downloads a version's files (default: all) into dest_dir and verifies each sha256.

        Returns:
            dest_dir as a Path.

        Raises:
            NotFound: no such version, or a requested file is not in its manifest.
            IntegrityError: a file's size or sha256 differs from the manifest (the file is
                deleted from dest_dir, and the message names it).
        """
        return self._fetch(name, version, self.manifest(name, version), dest_dir, files)

    def load(self, name: str, version: str | None = None) -> LoadedModel:
        """Loads the pipeline and schema of a version (default: the champion).

        Only model.joblib and schema.json are downloaded; both are verified against the manifest
        before the pickle is opened. Through the champion, the manifest itself is checked
        against the pointer's manifest_sha256.

        Raises:
            NotFound: no champion / no such version.
            IntegrityError: tampered or truncated manifest, model or schema.
            ModelError: the version has no model or schema, or the pickle cannot be loaded.
        """
        expected_manifest_sha = None
        if version is None:
            pointer = self.champion_pointer(name)
            if pointer is None:
                raise errors.NotFound(
                    f"model {name!r} has no champion; promote a version first "
                    f"(kfops models promote {name} VERSION)"
                )
            version, expected_manifest_sha = pointer["version"], pointer.get("manifest_sha256")
        raw = self._manifest_bytes(name, version)
        if expected_manifest_sha and dataio.sha256_bytes(raw) != expected_manifest_sha:
            raise errors.IntegrityError(
                f"{_key(name, version, MANIFEST_FILE)} does not match the sha256 recorded in "
                f"{CHAMPION_FILE}: the manifest was modified; refusing to load"
            )
        manifest = _parse_manifest(raw, _key(name, version))
        missing = [f for f in (MODEL_FILE, SCHEMA_FILE) if f not in manifest["files"]]
        if missing:
            raise errors.ModelError(f"{_key(name, version)} has no {', '.join(missing)}")
        with tempfile.TemporaryDirectory(prefix="kfops-load-") as tmp:
            self._fetch(name, version, manifest, tmp, [MODEL_FILE, SCHEMA_FILE])
            data_schema = schema.Schema.load(Path(tmp, SCHEMA_FILE))
            pipeline = modelio.load_model(
                Path(tmp, MODEL_FILE), manifest["files"][MODEL_FILE]["sha256"]
            )
        return LoadedModel(name, version, pipeline, data_schema, manifest)

    def _fetch(
        self,
        name: str,
        version: str,
        manifest: dict[str, Any],
        dest_dir: str | os.PathLike,
        files: list[str] | None,
    ) -> Path:
        dest = Path(dest_dir)
        for fname in files if files is not None else sorted(manifest["files"]):
            entry = manifest["files"].get(fname)
            if entry is None:
                raise errors.NotFound(f"{_key(name, version)} has no file {fname!r}")
            path, label = dest / fname, self.store.url_for(_key(name, version, fname))
            try:
                self.store.get_file(_key(name, version, fname), path)
            except errors.NotFound as e:
                raise errors.IntegrityError(
                    f"{label} is listed in the manifest but missing from the store"
                ) from e
            _verify(path, entry, label)
        return dest

    def _reserve(self, name: str, requested: str | None) -> lease.Lease:
        """Holds the lease of `requested`, or of the next version number nobody live holds."""
        if requested is not None:
            _check_version(requested)
            held = self._claim(name, requested)
            if held is None:
                raise errors.AlreadyExists(self._taken(name, requested))
            return held
        present = self._present(name)
        newest = max(present, key=int, default="0")
        candidate = int(newest) if newest in present and not present[newest] else int(newest) + 1
        for number in range(candidate, candidate + MAX_ATTEMPTS):
            held = self._claim(name, str(number))
            if held is not None:
                return held
        raise errors.StorageError(
            f"model {name!r}: versions {candidate}..{number} are all taken by live pushes or "
            "registered; retry later"
        )

    def _claim(self, name: str, version: str) -> lease.Lease | None:
        """The lease of an unused or abandoned version number, its leftovers cleared.

        None if the version is registered or a live push holds it.
        """
        held = lease.Lease.acquire(self.store, _key(name, version, LEASE_FILE), self.lease_seconds)
        if held is None:
            return None
        if self.store.exists(_key(name, version, MANIFEST_FILE)):
            held.drop()  # registered: the lease we just made (or took, stale) guards nothing
            return None
        for key in list(self.store.list(_key(name, version) + "/")):
            if key != held.key:
                self.store.delete(key)  # leftovers of a push whose lease expired or never was
        return held

    def _taken(self, name: str, version: str) -> str:
        if self.store.exists(_key(name, version, MANIFEST_FILE)):
            return (
                f"model {name!r} version {version} already exists in {self.store.uri}; "
                "versions are immutable: register a new version instead"
            )
        try:
            holder = lease.describe(self.store.get_bytes(_key(name, version, LEASE_FILE)))
        except errors.NotFound:
            holder = "another push"
        return f"model {name!r} version {version} is being pushed by {holder}; use another version"

    def _present(self, name: str) -> dict[str, bool]:
        """Every version number with files or a lease -> whether it is complete."""
        present: dict[str, bool] = {}
        for _, v, done in self._scan(_key(name) + "/"):
            present[v] = present.get(v, False) or done
        return present

    def _scan(self, prefix: str):
        """(name, version, is_manifest) for every versioned key under prefix."""
        for key in self.store.list(prefix):
            parts = key.split("/")
            if len(parts) >= 4 and parts[0] == ROOT and _VERSION.match(parts[2]):
                yield parts[1], parts[2], len(parts) == 4 and parts[3] == MANIFEST_FILE

    def _manifest_bytes(self, name: str, version: str) -> bytes:
        _check_name(name)
        _check_version(version)
        try:
            return self.store.get_bytes(_key(name, version, MANIFEST_FILE))
        except errors.NotFound as e:
            known = ", ".join(self.versions(name)) or "none"
            raise errors.NotFound(
                f"model {name!r} has no version {version} in {self.store.uri} (versions: {known})"
            ) from e

    def _swap_champion(self, name: str, change: Callable[[dict | None], dict | None]) -> dict:
        """Applies `change` to the champion pointer by compare-and-swap, re-reading on conflict.

        `change` gets the current pointer (None: no champion) and returns the new one, or None
        to leave it as it is (then the current one is returned).
        """
        return self.swap_document(name, CHAMPION_FILE, change, _parse_pointer)

    def document(self, name: str, file_name: str) -> dict[str, Any] | None:
        """A model-level JSON document (e.g. STAGED_FILE), or None when it was never written."""
        _check_name(name)
        try:
            return _parse_document(self.store.get_bytes(_key(name, file_name)), file_name)
        except errors.NotFound:
            return None

    def swap_document(
        self,
        name: str,
        file_name: str,
        change: Callable[[dict | None], dict | None],
        parse: Callable[[bytes, str], dict] | None = None,
    ) -> dict | None:
        """Applies `change` to a model-level JSON document by compare-and-swap, as the champion.

        `change` gets the current document (None: none yet) and returns the new one, or None to
        leave it as it is (then the current one is returned). It may raise to refuse.
        """
        _check_name(name)
        key = _key(name, file_name)
        parse = parse or _parse_document
        for attempt in range(MAX_ATTEMPTS):
            try:
                raw, tag = self.store.get_bytes_tagged(key)
            except errors.NotFound:
                raw, tag = None, None
            current = None if raw is None else parse(raw, key)
            pointer = change(current)
            if pointer is None:
                return current
            try:
                self.store.put_bytes_if(key, _json_bytes(pointer), tag)
                return pointer
            except base.PreconditionFailed:
                time.sleep(random.uniform(0, 0.01 * min(attempt + 1, 20)))  # another writer won
        raise base.PreconditionFailed(
            f"{self.store.url_for(key)} changed {MAX_ATTEMPTS} times while this update retried; "
            "retry the command"
        )

    def _pointer(self, version: str, previous: list[str], manifest_sha: str) -> dict:
        return {
            "version": version,
            "previous": previous,
            "updated_at": self._now(),
            "manifest_sha256": manifest_sha,
        }

    def _now(self) -> str:
        return self._clock().isoformat(timespec="seconds")


def _key(name: str, *parts: str) -> str:
    return "/".join((ROOT, name, *parts))


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise errors.ConfigError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' (max 128)"
        )


def _check_version(version: Any) -> None:
    if not isinstance(version, str) or not _VERSION.match(version):
        raise errors.ConfigError(f"invalid model version {version!r}: expected '1', '2', ...")


def _create(store: base.Store, key: str, data: bytes) -> None:
    """Create-only write that also accepts finding its own bytes there.

    A PUT retried after its answer was lost may find its own first write.
    """
    try:
        store.put_bytes_if(key, data, None)
    except base.PreconditionFailed:
        if store.get_bytes(key) != data:
            raise


def _parse_pointer(data: bytes, where: str) -> dict[str, Any]:
    try:
        pointer = json.loads(data)
        _check_version(pointer["version"])
    except (ValueError, KeyError, TypeError, errors.ConfigError) as e:
        raise errors.IntegrityError(f"{where} is corrupt: {e}") from e
    return pointer


def _parse_document(data: bytes, where: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except ValueError as e:
        raise errors.IntegrityError(f"{where} is corrupt: {e}") from e
    if not isinstance(document, dict):
        raise errors.IntegrityError(f"{where} is corrupt: not a JSON object")
    return document


def _describe(fname: str, path: str | os.PathLike) -> dict[str, Any]:
    """sha256 and size of a local file about to be registered."""
    if not _NAME.match(fname) or fname in RESERVED_FILES:
        raise errors.ConfigError(f"invalid version file name {fname!r}")
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError as e:
        raise errors.ConfigError(f"file {fname!r} to register does not exist: {path}") from e
    return {"sha256": dataio.sha256_file(path), "size": size}


def _verify(path: Path, entry: Mapping[str, Any], label: str) -> None:
    """Raises IntegrityError naming the file if its size or sha256 is not the recorded one."""
    size, problem = path.stat().st_size, None
    if size != entry["size"]:
        kind = "truncated" if size < entry["size"] else "has extra bytes"
        problem = f"{kind}: {size} bytes, manifest says {entry['size']}"
    elif (actual := dataio.sha256_file(path)) != entry["sha256"]:
        problem = f"sha256 {actual} differs from manifest {entry['sha256']}"
    if problem:
        path.unlink(missing_ok=True)
        raise errors.IntegrityError(
            f"{label} {problem}: the stored file was modified or damaged; refusing to use it"
        )


def _parse_manifest(raw: bytes, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
        files = manifest["files"]
        for fname, entry in files.items():
            if not _NAME.match(fname) or not isinstance(entry["sha256"], str):
                raise ValueError(f"unsafe or malformed file entry {fname!r}")
            int(entry["size"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise errors.IntegrityError(f"{where}/{MANIFEST_FILE} is corrupt: {e}") from e
    return manifest


def _json_bytes(obj: Any) -> bytes:
    try:
        return (
            json.dumps(obj, indent=2, sort_keys=True, default=dataio._json_default) + "\n"
        ).encode()
    except (TypeError, ValueError) as e:
        raise errors.ConfigError(f"registry metadata is not JSON-serialisable: {e}") from e
