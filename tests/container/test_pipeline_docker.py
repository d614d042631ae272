"""The training pipeline with every step in the kfops image (kfp.local DockerRunner, podman)."""

import json

import pytest

from kfops import cli, registry, store

pytestmark = [pytest.mark.container, pytest.mark.slow]


def test_run_in_containers_registers_a_blessed_model(kfops_image, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", kfops_image.docker_host)
    code = cli.main(
        [
            "run",
            "--runner",
            "docker",
            "--source",
            "builtin:churn?rows=1500&seed=1",
            "--store",
            str(tmp_path / "store"),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--json",
            "--param",
            "search_iterations=2",
            "--param",
            "cv_folds=2",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert summary["blessed"] is True and summary["model_version"] == "1", summary
    loaded = registry.Registry(store.open_store(str(tmp_path / "store"))).load("churn")
    assert loaded.manifest["metadata"]["lineage"]["image"] == kfops_image.name
    # every step that ran was started by DockerRunner from the local image
    log = open(summary["log"], encoding="utf-8").read()
    expected = {
        "ingest",
        "validate",
        "split",
        "train",
        "evaluate",
        "champion",
        "gate",
        "infra-validate",
        "push",
    }
    assert set(summary["steps"]) == expected
    # plus run-context (writes the run header) and the exit handler's outcome step (end.json),
    # which are tasks but not step records
    assert log.count(f"Found image {kfops_image.name!r}") == len(expected) + 2
