"""Incremental runs through `kfops run` over a directory of partitions: counts in the run record."""

import json

import pytest

from kfops import cli, datasets, watermarks
from kfops.store import local

pytestmark = pytest.mark.slow

FAST = ["--param", "search_iterations=2", "--param", "cv_folds=2"]


def run(capsys, tmp_path, source, label="churned"):
    argv = ["run", "--source", str(source), "--incremental", "--retention", "3", "--label", label,
            "--name", "churn", "--store", str(tmp_path / "store"), "--runs-dir",
            str(tmp_path / "runs"), "--json", *FAST]  # fmt: skip
    code = cli.main(argv)
    summary = json.loads(capsys.readouterr().out)
    step = tmp_path / "store" / "runs" / summary["run_id"] / "steps" / "ingest.json"
    facts = json.loads(step.read_text())["outputs"][0] if step.exists() else {}
    return code, summary, facts


def test_two_incremental_runs_a_failed_one_and_the_retention_window(capsys, tmp_path):
    frame = datasets.load_builtin("builtin:churn?rows=2500&seed=2")
    parts = tmp_path / "events"
    parts.mkdir()

    def add(i):
        frame.iloc[i * 500 : (i + 1) * 500].to_parquet(parts / f"batch-{i:03d}.parquet")

    add(0), add(1)
    code, summary, first = run(capsys, tmp_path, parts)
    assert code == 0, summary
    assert (first["new_partitions"], first["new_rows"], first["snapshot_rows"]) == (2, 1000, 1000)
    key = first["watermark"]
    store = local.LocalStore(tmp_path / "store")
    assert len(watermarks.committed(store, key)["partitions"]) == 2

    add(2)
    code, summary, failed = run(capsys, tmp_path, parts, label="no_such_label")
    assert code != 0 and summary["status"] == "failed", summary
    assert failed["new_partitions"] == 1  # it read the new partition, then failed
    assert len(watermarks.committed(store, key)["partitions"]) == 2  # watermark unchanged

    add(3)
    code, summary, second = run(capsys, tmp_path, parts)
    assert code == 0, summary
    # the failed run's partition and the newest one; the snapshot keeps the newest 3 of 4
    assert (second["new_partitions"], second["new_rows"]) == (2, 1000)
    assert (second["previous_partitions"], second["snapshot_partitions"]) == (2, 3)
    assert second["snapshot_rows"] == 1500
    assert len(watermarks.committed(store, key)["partitions"]) == 4
