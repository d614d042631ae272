"""The model registry on both backends (local directory, real S3 server), and a crash test."""

import dataclasses
import datetime
import json
import os
import threading

import numpy as np
import pandas as pd
import pytest

from kfops import dataio, errors, registry
from kfops.store import lease, s3

ROWS = pd.DataFrame({"a": [2.0, -2.0, 0.5], "b": [-1.0, 1.0, 3.0]})


@pytest.fixture
def reg(any_store):
    fixed = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
    return registry.Registry(any_store, clock=lambda: fixed)


def _flip_last_byte(store, key):
    data = store.get_bytes(key)
    store.put_bytes(key, data[:-1] + bytes([data[-1] ^ 0xFF]))


def test_register_writes_manifest_with_sha256_size_and_metadata(reg, model_files):
    version = reg.register("churn", model_files, {"run": "r1", "auc": np.float64(0.9)})
    manifest = reg.manifest("churn", "1")
    assert version.version == "1" and version.manifest == manifest
    assert manifest["created_at"] == "2024-05-01T12:00:00+00:00"
    assert manifest["metadata"] == {"run": "r1", "auc": 0.9}
    for name, path in model_files.items():
        assert manifest["files"][name] == {
            "sha256": dataio.sha256_file(path),
            "size": path.stat().st_size,
        }


def test_register_numbers_versions_one_two_three(reg, model_files):
    numbers = [reg.register("churn", model_files).version for _ in range(3)]
    assert numbers == ["1", "2", "3"]
    assert reg.versions("churn") == ["1", "2", "3"]


def test_registry_models_lists_names_with_complete_versions(reg, model_files):
    reg.register("beta", model_files)
    reg.register("alpha", model_files)
    assert reg.models() == ["alpha", "beta"]
    assert reg.versions("unknown") == []


def test_register_refuses_existing_version_and_keeps_it_intact(reg, model_files):
    reg.register("churn", model_files, {"first": True})
    with pytest.raises(errors.AlreadyExists, match="version 1 already exists"):
        reg.register("churn", model_files, {"first": False}, version="1")
    assert reg.manifest("churn", "1")["metadata"] == {"first": True}


def test_register_refuses_bad_metadata_before_uploading(reg, model_files):
    with pytest.raises(errors.ConfigError, match="JSON"):
        reg.register("churn", model_files, {"bad": object()})
    assert list(reg.store.list()) == []


@pytest.mark.parametrize("name", ["", "a/b", "../x", "-lead"])
def test_register_rejects_invalid_model_name(reg, model_files, name):
    with pytest.raises(errors.ConfigError, match="invalid model name"):
        reg.register(name, model_files)


def test_register_rejects_missing_local_file(reg, tmp_path):
    with pytest.raises(errors.ConfigError, match="does not exist"):
        reg.register("churn", {"model.joblib": tmp_path / "absent"})


def test_load_returns_verified_pipeline_and_schema(reg, model_files):
    reg.register("churn", model_files)
    loaded = reg.load("churn", "1")
    assert (loaded.name, loaded.version) == ("churn", "1")
    assert loaded.schema.feature_names == ["a", "b"]
    # The toy model learned y = a > b.
    assert loaded.pipeline.predict(ROWS).tolist() == [1, 0, 0]


def test_load_without_version_needs_a_champion(reg, model_files):
    reg.register("churn", model_files)
    with pytest.raises(errors.NotFound, match="no champion; promote"):
        reg.load("churn")


def test_promote_sets_champion_and_load_follows_it(reg, model_files):
    reg.register("churn", model_files)
    reg.register("churn", model_files)
    reg.promote("churn", "2")
    assert reg.champion("churn") == "2"
    assert reg.load("churn").version == "2"


def test_promote_records_previous_stack_and_manifest_sha(reg, model_files):
    for _ in range(3):
        reg.register("churn", model_files)
    for version in ("1", "2", "3"):
        reg.promote("churn", version)
    pointer = reg.champion_pointer("churn")
    manifest_bytes = reg.store.get_bytes("models/churn/3/manifest.json")
    assert pointer["previous"] == ["1", "2"]
    assert pointer["manifest_sha256"] == dataio.sha256_bytes(manifest_bytes)


def test_promote_refuses_unknown_version_and_lists_known_ones(reg, model_files):
    reg.register("churn", model_files)
    with pytest.raises(errors.NotFound, match=r"no version 7 .*\(versions: 1\)"):
        reg.promote("churn", "7")
    assert reg.champion("churn") is None


def test_rollback_walks_back_through_previous_champions(reg, model_files):
    for _ in range(3):
        reg.register("churn", model_files)
    for version in ("1", "2", "3"):
        reg.promote("churn", version)
    assert reg.rollback("churn") == "2"
    assert reg.rollback("churn") == "1"
    assert reg.champion("churn") == "1"
    with pytest.raises(errors.NotFound, match="no previous champion"):
        reg.rollback("churn")


def test_load_refuses_tampered_model_file_naming_it(reg, model_files):
    reg.register("churn", model_files)
    _flip_last_byte(reg.store, "models/churn/1/model.joblib")
    with pytest.raises(errors.IntegrityError, match=r"model\.joblib sha256 .* differs"):
        reg.load("churn", "1")


def test_load_refuses_truncated_model_file(reg, model_files):
    reg.register("churn", model_files)
    data = reg.store.get_bytes("models/churn/1/model.joblib")
    reg.store.put_bytes("models/churn/1/model.joblib", data[: len(data) // 2])
    with pytest.raises(errors.IntegrityError, match=r"model\.joblib truncated"):
        reg.load("churn", "1")


def test_load_refuses_champion_whose_manifest_was_edited(reg, model_files):
    reg.register("churn", model_files)
    reg.promote("churn", "1")
    manifest = reg.manifest("churn", "1")
    manifest["metadata"]["approved_by"] = "mallory"
    reg.store.put_bytes("models/churn/1/manifest.json", json.dumps(manifest).encode())
    with pytest.raises(errors.IntegrityError, match=r"manifest\.json does not match"):
        reg.load("churn")


def test_load_refuses_version_with_file_missing_from_store(reg, model_files):
    reg.register("churn", model_files)
    reg.store.delete("models/churn/1/schema.json")
    with pytest.raises(errors.IntegrityError, match=r"schema\.json is listed .* missing"):
        reg.load("churn", "1")


def test_fetch_downloads_every_file_verified(reg, model_files, tmp_path):
    reg.register("churn", model_files)
    out = reg.fetch("churn", "1", tmp_path / "out")
    assert sorted(os.listdir(out)) == sorted(model_files)
    assert all((out / n).read_bytes() == p.read_bytes() for n, p in model_files.items())


def test_fetch_refuses_tampered_file_and_removes_local_copy(reg, model_files, tmp_path):
    reg.register("churn", model_files)
    _flip_last_byte(reg.store, "models/churn/1/reference.parquet")
    with pytest.raises(errors.IntegrityError, match=r"reference\.parquet"):
        reg.fetch("churn", "1", tmp_path / "out")
    assert not (tmp_path / "out" / "reference.parquet").exists()


def test_incomplete_version_is_invisible(reg, model_files):
    reg.register("churn", model_files)
    reg.store.put_file("models/churn/2/model.joblib", model_files["model.joblib"])
    reg.store.put_file("models/ghost/1/model.joblib", model_files["model.joblib"])
    assert reg.versions("churn") == ["1"]
    assert reg.models() == ["churn"]
    with pytest.raises(errors.NotFound):
        reg.load("churn", "2")


def test_register_reuses_incomplete_version_and_drops_its_leftovers(reg, model_files):
    reg.register("churn", model_files)
    reg.store.put_bytes("models/churn/2/stale.bin", b"from a push that died")
    version = reg.register("churn", model_files)
    assert version.version == "2"
    assert "models/churn/2/stale.bin" not in list(reg.store.list("models/churn/2/"))
    assert reg.load("churn", "2").version == "2"


def test_crash_mid_push_keeps_champion_and_rerun_completes(
    s3_server_factory, fault_proxy, model_files, tmp_path
):
    server = s3_server_factory()
    bucket = server.make_bucket()
    direct = registry.Registry(server.store(bucket, "reg"))
    direct.register("churn", model_files)
    direct.promote("churn", "1")

    big = tmp_path / "reference.parquet"
    big.write_bytes(os.urandom(24 << 20))
    files = {**model_files, "reference.parquet": big}
    # Upload through a throttled proxy so the kill lands mid-upload, deterministically.
    proxy = fault_proxy(server.ports["s3"])
    proxy.upload_rate = 8 << 20
    tuning = s3.S3Tuning(part_size=5 << 20, parallel_uploads=2, retries=1, backoff=0.05)
    settings = dataclasses.replace(server.settings, endpoint=proxy.endpoint)
    slow = registry.Registry(
        s3.S3Store.from_uri(f"s3://{bucket}/reg", settings, tuning), lease_seconds=2
    )
    failure = []
    pusher = threading.Thread(target=lambda: _capture(failure, slow.register, "churn", files))
    pusher.start()
    _wait_for(lambda: proxy.uploaded > 8 << 20 or not pusher.is_alive())
    assert pusher.is_alive(), "the push finished before the kill: slow the proxy down"
    server.kill()
    pusher.join(timeout=30)
    assert isinstance(failure[0], errors.StorageError)

    server.start()  # same data dir and ports
    leftovers = list(direct.store.list("models/churn/2/"))
    assert leftovers and "models/churn/2/manifest.json" not in leftovers  # died mid-push
    assert direct.versions("churn") == ["1"]
    assert direct.load("churn").version == "1"
    # The dead push could not release its lease (the server was down): it expires on its own,
    # then the next push reuses the number and replaces the leftovers.
    _wait_for(lambda: lease.expired(direct.store.get_bytes("models/churn/2/lease.json")))
    rerun = direct.register("churn", files)
    direct.promote("churn", rerun.version)
    assert rerun.version == "2"
    assert direct.load("churn").version == "2"
    direct.fetch("churn", "2", tmp_path / "fetched")
    assert (tmp_path / "fetched" / "reference.parquet").read_bytes() == big.read_bytes()


def _capture(sink, func, *args):
    try:
        func(*args)
        sink.append(None)
    except Exception as e:  # noqa: BLE001 (the test inspects whatever the push raised)
        sink.append(e)


def _wait_for(condition, timeout=20.0):
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
    while not condition():
        assert datetime.datetime.now() < deadline, "condition not reached in time"
        threading.Event().wait(0.02)


def test_registry_file_names_are_spelled_only_in_the_registry():
    """One definition of the layout: any other module spelling a file name as a literal drifts."""
    import ast  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    names = {
        registry.MODEL_FILE,
        registry.SCHEMA_FILE,
        registry.METRICS_FILE,
        registry.BLESSING_FILE,
        registry.LINEAGE_FILE,
        registry.REFERENCE_FILE,
        registry.MODEL_CARD_FILE,
        registry.MANIFEST_FILE,
        registry.LEASE_FILE,
        registry.CHAMPION_FILE,
    }
    root = Path(registry.__file__).parents[1]
    offenders = [
        f"{path.relative_to(root)}:{node.lineno} {node.value}"
        for folder in ("kfops", "components", "pipelines", "bench")
        for path in sorted((root / folder).rglob("*.py"))
        if path != Path(registry.__file__)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in names
    ]
    assert offenders == []
