"""`kfops run --store s3://...`: the training pipeline with its registry in a real bucket."""

import json

import pytest

from kfops import cli, registry

pytestmark = pytest.mark.slow

SOURCE = "builtin:churn?rows=1500&seed=1"
FAST = ["--param", "search_iterations=2", "--param", "cv_folds=2"]


def test_run_with_s3_store_registers_champion_in_bucket_without_leaking_secret(
    s3_server, monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv("MINIO_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("MINIO_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("MINIO_SECRET_KEY", s3_server.secret_key)
    monkeypatch.setenv("MINIO_SECURE", "false")
    bucket = s3_server.make_bucket("kfops-run")
    runs_dir = tmp_path / "runs"
    argv = ["run", "--source", SOURCE, "--store", f"s3://{bucket}/kfops"]
    code = cli.main([*argv, "--runs-dir", str(runs_dir), "--json", *FAST])
    out = capsys.readouterr().out
    summary = json.loads(out)
    assert code == 0 and summary["status"] == "succeeded" and summary["blessed"], summary

    reg = registry.Registry(s3_server.store(bucket, "kfops"))
    assert reg.champion("churn") == summary["model_version"] == "1"
    loaded = reg.load("churn")
    assert loaded.manifest["metadata"]["lineage"]["run_id"] == summary["run_id"]
    assert "churned" not in loaded.schema.feature_names

    secret = s3_server.secret_key
    assert secret not in out
    for key in reg.store.list():
        assert secret.encode() not in reg.store.get_bytes(key), key
    for path in runs_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
