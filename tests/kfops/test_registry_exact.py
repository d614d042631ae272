"""Exact registry answers, written from the mutants `make mutation` found alive.

Local store only (the S3 runs of tests/kfops/test_registry.py cover the backend); each test pins
a whole message, a returned list or a pointer, since an operator acts on these.
"""

import datetime
import json

import numpy as np
import pytest

from kfops import dataio, errors, registry
from kfops.store import lease, local

FIXED = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def reg(tmp_path):
    return registry.Registry(local.LocalStore(tmp_path / "store"), clock=lambda: FIXED)


@pytest.fixture
def files(tmp_path):
    paths = {"a.txt": tmp_path / "a.txt", "b.txt": tmp_path / "b.txt"}
    paths["a.txt"].write_bytes(b"alpha")
    paths["b.txt"].write_bytes(b"beta")
    return paths


def _raised(exc_type, fn):
    with pytest.raises(exc_type) as info:
        fn()
    return str(info.value)


def test_explicit_version_taken_by_a_registered_or_a_live_push_is_named(reg, files):
    reg.register("m", files)
    assert _raised(errors.AlreadyExists, lambda: reg.register("m", files, version="1")) == (
        f"model 'm' version 1 already exists in {reg.store.uri}; "
        "versions are immutable: register a new version instead"
    )
    held = lease.Lease.acquire(reg.store, "models/m/2/lease.json", 300)
    holder = lease.describe(reg.store.get_bytes(held.key))
    assert _raised(errors.AlreadyExists, lambda: reg.register("m", files, version="2")) == (
        f"model 'm' version 2 is being pushed by {holder}; use another version"
    )
    assert reg.register("m", files).version == "3"  # the live push keeps its number


def test_manifest_of_a_missing_version_lists_the_known_ones(reg, files):
    assert _raised(errors.NotFound, lambda: reg.manifest("m", "1")) == (
        f"model 'm' has no version 1 in {reg.store.uri} (versions: none)"
    )
    reg.register("m", files)
    reg.register("m", files)
    assert _raised(errors.NotFound, lambda: reg.manifest("m", "3")) == (
        f"model 'm' has no version 3 in {reg.store.uri} (versions: 1, 2)"
    )
    assert _raised(errors.ConfigError, lambda: reg.manifest("m", "01")) == (
        "invalid model version '01': expected '1', '2', ..."
    )


def test_rollback_pointer_is_exact(reg, files):
    assert _raised(errors.NotFound, lambda: reg.rollback("m")) == (
        "model 'm' has no previous champion to roll back to"
    )
    for _ in range(3):
        reg.register("m", files)
    for version in ("1", "3"):
        reg.promote("m", version)
    assert reg.rollback("m") == "1"
    manifest_sha = dataio.sha256_bytes(reg.store.get_bytes("models/m/1/manifest.json"))
    assert reg.champion_pointer("m") == {
        "version": "1",
        "previous": [],
        "updated_at": "2024-05-01T12:00:00+00:00",
        "manifest_sha256": manifest_sha,
    }


def test_sweep_clears_dead_incomplete_versions_oldest_first_and_spares_the_rest(reg, files):
    reg.register("m", files)
    for version in ("3", "2", "4"):
        reg.store.put_bytes(f"models/m/{version}/a.txt", b"left by a dead push")
    live = lease.Lease.acquire(reg.store, "models/m/4/lease.json", 300)
    assert reg.sweep("m") == ["2", "3"]
    assert sorted(reg.store.list("models/m/")) == [
        "models/m/1/a.txt",
        "models/m/1/b.txt",
        "models/m/1/manifest.json",
        "models/m/4/a.txt",
        live.key,
    ]
    assert reg.sweep("m") == []
    assert _raised(errors.ConfigError, lambda: reg.sweep("a/b")).startswith("invalid model name")


def test_documents_read_back_and_corrupt_ones_are_named(reg):
    assert reg.document("m", registry.STAGED_FILE) is None
    reg.swap_document("m", registry.STAGED_FILE, lambda current: {"seen": current})
    assert reg.document("m", registry.STAGED_FILE) == {"seen": None}
    reg.store.put_bytes("models/m/staged.json", b"[1]")
    assert _raised(errors.IntegrityError, lambda: reg.document("m", "staged.json")) == (
        "staged.json is corrupt: not a JSON object"
    )
    reg.store.put_bytes("models/m/staged.json", b"{")
    message = _raised(errors.IntegrityError, lambda: reg.document("m", "staged.json"))
    assert message.startswith("staged.json is corrupt: Expecting property name")
    assert _raised(errors.ConfigError, lambda: reg.document("", "staged.json")) == (
        "invalid model name '': use letters, digits, '.', '_' or '-' (max 128)"
    )


def test_fetch_takes_only_the_files_asked_for(reg, files, tmp_path):
    reg.register("m", files)
    out = reg.fetch("m", "1", tmp_path / "out", ["b.txt"])
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert _raised(errors.NotFound, lambda: reg.fetch("m", "1", tmp_path / "x", ["c.txt"])) == (
        "models/m/1 has no file 'c.txt'"
    )


def test_manifest_records_every_file_and_the_metadata(reg, files):
    reg.register("m", files, {"note": "x"})
    manifest = reg.manifest("m", "1")
    assert manifest["files"] == {
        "a.txt": {"sha256": dataio.sha256_bytes(b"alpha"), "size": 5},
        "b.txt": {"sha256": dataio.sha256_bytes(b"beta"), "size": 4},
    }
    assert manifest["metadata"] == {"note": "x"}
    assert json.loads(reg.store.get_bytes("models/m/1/manifest.json")) == manifest


def test_sweep_orders_versions_as_numbers(reg):
    for version in ("10", "9"):
        reg.store.put_bytes(f"models/m/{version}/a.txt", b"left by a dead push")
    assert reg.sweep("m") == ["9", "10"]


def test_a_corrupt_champion_pointer_is_refused_by_promote_and_read(reg, files):
    reg.register("m", files)
    reg.store.put_bytes("models/m/champion.json", json.dumps({"version": "x"}).encode())
    expected = (
        "models/m/champion.json is corrupt: invalid model version 'x': expected '1', '2', ..."
    )
    assert _raised(errors.IntegrityError, lambda: reg.promote("m", "1")) == expected
    assert _raised(errors.IntegrityError, lambda: reg.champion_pointer("m")) == expected


def test_the_default_clock_stamps_utc(tmp_path, files):
    reg = registry.Registry(local.LocalStore(tmp_path / "utc"))
    reg.register("m", files)
    assert reg.promote("m", "1")["updated_at"].endswith("+00:00")


def _racing(reg, losses):
    """A change function whose document another writer moves right after each of its reads."""
    calls = []

    def change(current):
        calls.append(current)
        if len(calls) <= losses:
            reg.store.put_bytes("models/m/staged.json", json.dumps({"n": len(calls)}).encode())
        return {"mine": True}

    return change, calls


def test_swap_document_retries_a_lost_race_with_a_growing_capped_jitter(reg, monkeypatch):
    bounds, waits = [], []
    monkeypatch.setattr(registry.random, "uniform", lambda a, b: bounds.append((a, b)) or b)
    monkeypatch.setattr(registry.time, "sleep", waits.append)
    change, calls = _racing(reg, 21)
    assert reg.swap_document("m", "staged.json", change) == {"mine": True}
    assert calls[:3] == [None, {"n": 1}, {"n": 2}] and len(calls) == 22
    assert bounds == [(0, pytest.approx(0.01 * min(k, 20))) for k in range(1, 22)]
    assert waits == [b for _, b in bounds]
    assert reg.document("m", "staged.json") == {"mine": True}


def test_swap_document_gives_up_after_max_attempts_naming_the_document(reg, monkeypatch):
    monkeypatch.setattr(registry.time, "sleep", lambda seconds: None)
    change, calls = _racing(reg, registry.MAX_ATTEMPTS)
    message = _raised(
        registry.base.PreconditionFailed, lambda: reg.swap_document("m", "staged.json", change)
    )
    assert message == (
        f"{reg.store.url_for('models/m/staged.json')} changed {registry.MAX_ATTEMPTS} times "
        "while this update retried; retry the command"
    )
    assert len(calls) == registry.MAX_ATTEMPTS


def test_swap_document_names_a_corrupt_document_by_its_key(reg):
    reg.store.put_bytes("models/m/staged.json", b"[]")
    assert _raised(errors.IntegrityError, lambda: reg.swap_document("m", "staged.json", dict)) == (
        "models/m/staged.json is corrupt: not a JSON object"
    )


def test_promote_over_a_pointer_without_a_rollback_stack(reg, files):
    reg.register("m", files)
    reg.register("m", files)
    reg.store.put_bytes("models/m/champion.json", json.dumps({"version": "1"}).encode())
    assert reg.promote("m", "2")["previous"] == ["1"]


def test_a_lease_gone_before_it_is_described_is_another_push(tmp_path, files):
    class LeaseUnreadable(local.LocalStore):
        def get_bytes(self, key):
            if key.endswith(registry.LEASE_FILE):
                raise errors.NotFound(key)
            return super().get_bytes(key)

    store = LeaseUnreadable(tmp_path / "store")
    lease.Lease.acquire(store, "models/m/1/lease.json", 300)
    reg = registry.Registry(store)
    assert _raised(errors.AlreadyExists, lambda: reg.register("m", files, version="1")) == (
        "model 'm' version 1 is being pushed by another push; use another version"
    )


def test_load_names_what_a_version_lacks_and_a_corrupt_or_edited_manifest(reg, files):
    reg.register("m", files)
    assert _raised(errors.ModelError, lambda: reg.load("m", "1")) == (
        "models/m/1 has no model.joblib, schema.json"
    )
    reg.promote("m", "1")
    manifest = reg.store.get_bytes("models/m/1/manifest.json")
    reg.store.put_bytes("models/m/1/manifest.json", manifest + b" ")
    assert _raised(errors.IntegrityError, lambda: reg.load("m")) == (
        "models/m/1/manifest.json does not match the sha256 recorded in champion.json: "
        "the manifest was modified; refusing to load"
    )
    reg.store.put_bytes("models/m/1/manifest.json", b"[")
    assert _raised(errors.IntegrityError, lambda: reg.load("m", "1")).startswith(
        "models/m/1/manifest.json is corrupt: "
    )


def test_load_downloads_and_checks_only_the_model_and_its_schema(reg, model_files):
    reg.register("churn", model_files)
    data = reg.store.get_bytes("models/churn/1/reference.parquet")
    reg.store.put_bytes("models/churn/1/reference.parquet", data[:-1] + bytes([data[-1] ^ 0xFF]))
    loaded = reg.load("churn", "1")
    assert (loaded.version, loaded.manifest) == ("1", reg.manifest("churn", "1"))


def test_fetch_names_a_file_missing_from_the_store_or_grown(reg, files, tmp_path):
    reg.register("m", files)
    reg.store.put_bytes("models/m/1/b.txt", b"beta plus")
    assert _raised(errors.IntegrityError, lambda: reg.fetch("m", "1", tmp_path / "o")) == (
        f"{reg.store.url_for('models/m/1/b.txt')} has extra bytes: 9 bytes, manifest says 4: "
        "the stored file was modified or damaged; refusing to use it"
    )
    reg.store.delete("models/m/1/a.txt")
    assert _raised(errors.IntegrityError, lambda: reg.fetch("m", "1", tmp_path / "p")) == (
        f"{reg.store.url_for('models/m/1/a.txt')} is listed in the manifest but missing from "
        "the store"
    )


def test_versions_sort_as_numbers(reg, files):
    for version in ("9", "10"):
        reg.register("m", files, version=version)
    assert reg.versions("m") == ["9", "10"]


@pytest.mark.parametrize(
    ("files_entry", "problem"),
    [
        ({"../x": {"sha256": "a", "size": 1}}, "unsafe or malformed file entry '../x'"),
        ({"a.txt": {"sha256": 7, "size": 1}}, "unsafe or malformed file entry 'a.txt'"),
    ],
)
def test_a_manifest_with_an_unsafe_entry_is_corrupt(reg, files, files_entry, problem):
    reg.register("m", files)
    reg.store.put_bytes("models/m/1/manifest.json", json.dumps({"files": files_entry}).encode())
    assert _raised(errors.IntegrityError, lambda: reg.manifest("m", "1")) == (
        f"models/m/1/manifest.json is corrupt: {problem}"
    )


def test_the_next_version_follows_the_numerically_newest(reg, files):
    reg.register("m", files, version="10")
    reg.store.put_bytes("models/m/9/a.txt", b"left by a dead push")
    assert reg.register("m", files).version == "11"


def test_every_number_tried_held_by_a_live_push_is_a_storage_error(reg, files, monkeypatch):
    """The newest number is incomplete and live: with one attempt allowed, nothing is left."""
    monkeypatch.setattr(registry, "MAX_ATTEMPTS", 1)
    reg.register("m", files)
    lease.Lease.acquire(reg.store, "models/m/2/lease.json", 300)
    assert _raised(errors.StorageError, lambda: reg.register("m", files)) == (
        "model 'm': versions 2..2 are all taken by live pushes or registered; retry later"
    )


def test_register_answers_and_writes_exactly(reg, files):
    assert _raised(errors.ConfigError, lambda: reg.register("m", {})) == (
        "register 'm': no files given"
    )
    registered = reg.register("m", files, {"b": np.int64(3), "a": 1})
    assert (registered.name, registered.version, registered.uri) == (
        "m", "1", reg.store.url_for("models/m/1"),
    )  # fmt: skip
    raw = reg.store.get_bytes("models/m/1/manifest.json")
    manifest = json.loads(raw)
    assert (manifest["name"], manifest["version"], manifest["metadata"]) == (
        "m", "1", {"a": 1, "b": 3},
    )  # fmt: skip
    assert raw == (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    assert registered.manifest == manifest


@pytest.mark.parametrize("fname", ["manifest.json", "../x"])
def test_register_refuses_a_reserved_or_unsafe_file_name(reg, files, fname):
    assert _raised(errors.ConfigError, lambda: reg.register("m", {fname: files["a.txt"]})) == (
        f"invalid version file name {fname!r}"
    )


def test_keys_that_are_not_version_folders_are_ignored(reg, files):
    reg.register("m", files)
    reg.store.put_bytes("models/m/7", b"an object named like a version")
    reg.store.put_bytes("models/m/notes/x.txt", b"not a version folder")
    assert reg.versions("m") == ["1"]
    assert reg.register("m", files).version == "2"


def test_a_create_retried_after_a_lost_answer_accepts_its_own_bytes(reg):
    registry._create(reg.store, "k", b"same")
    registry._create(reg.store, "k", b"same")
    with pytest.raises(registry.base.PreconditionFailed):
        registry._create(reg.store, "k", b"other")
