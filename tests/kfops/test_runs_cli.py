"""`kfops runs ...` and `kfops models lineage` through the real CLI entry point, on both stores."""

import json

import pytest

from kfops import cli, errors, runs
from kfops.store import s3
from tests.kfops import test_lineage, test_runs


@pytest.fixture
def store(any_store, request, monkeypatch):
    """The store, with the MINIO_* environment the CLI reads set for it (S3) or cleared (local)."""
    for name in ("MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_SECURE"):
        monkeypatch.delenv(name, raising=False)
    if isinstance(any_store, s3.S3Store):
        for name, value in test_runs.child_env(any_store, request).items():
            if name.startswith("MINIO_"):
                monkeypatch.setenv(name, value)
    return any_store


def kfops(capsys, store, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main([*argv, "--store", store.uri])
    out, err = capsys.readouterr()
    return code, out, err


def line_with(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


@pytest.fixture
def two_runs(store):
    test_runs.record_run(store, "run-a", seed=1, auc=0.81, blessed=False)
    test_runs.record_run(store, "run-b", seed=2, auc=0.86, version="2")
    return store


def test_runs_list_prints_a_table_of_both_runs(capsys, two_runs):
    code, out, _ = kfops(capsys, two_runs, "runs", "list")
    assert code == 0
    header, first, second = out.splitlines()
    assert header.split()[:3] == ["RUN", "WHEN", "(UTC)"]
    assert first.startswith("run-b") and second.startswith("run-a")
    assert "roc_auc=0.8600" in first and "churn v2" in first and " yes " in first
    assert "roc_auc=0.8100" in second and " no " in second and "succeeded" in second


def test_runs_list_json_carries_status_metrics_model_and_blessing(capsys, two_runs):
    code, out, _ = kfops(capsys, two_runs, "runs", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and [r["run_id"] for r in listed] == ["run-b", "run-a"]
    assert listed[0]["model"] == {"name": "churn", "version": "2"}
    assert listed[1]["blessed"] is False and listed[1]["metrics"]["roc_auc"] == 0.81


def test_runs_list_filters_by_experiment(capsys, store):
    test_runs.record_run(store, "tuned", seed=1, auc=0.8, experiment="tuning")
    test_runs.record_run(store, "plain", seed=2, auc=0.8)
    _, out, _ = kfops(capsys, store, "runs", "list", "--experiment", "tuning", "--json")
    assert [r["run_id"] for r in json.loads(out)] == ["tuned"]


def test_runs_list_says_when_nothing_is_recorded(capsys, store):
    if not isinstance(store, s3.S3Store):  # an empty store, not a missing one (that is an error)
        store.root.mkdir(parents=True, exist_ok=True)
    code, out, _ = kfops(capsys, store, "runs", "list")
    assert code == 0 and out.startswith("no runs recorded in ")


def test_runs_compare_marks_the_changed_parameter_and_metrics(capsys, two_runs):
    code, out, _ = kfops(capsys, two_runs, "runs", "compare", "run-a", "run-b")
    assert code == 0
    seed = line_with(out, " seed ")
    assert seed.startswith("*") and seed.split()[-3:] == ["1", "2", "+1"]
    auc = line_with(out, "evaluate.roc_auc")
    assert auc.startswith("*") and auc.split()[-3:] == ["0.8100", "0.8600", "+0.0500"]
    assert not line_with(out, "estimator").startswith("*")
    _, changed, _ = kfops(capsys, two_runs, "runs", "compare", "run-a", "run-b", "--changed")
    assert "estimator" not in changed and "evaluate.roc_auc" in changed


def test_runs_compare_json_lists_rows_with_changed_flags(capsys, two_runs):
    _, out, _ = kfops(capsys, two_runs, "runs", "compare", "run-a", "run-b", "--json")
    rows = {(r["section"], r["name"]): r for r in json.loads(out)["rows"]}
    assert rows[("parameter", "seed")]["values"] == [1, 2]
    assert rows[("parameter", "seed")]["changed"] is True
    assert rows[("parameter", "estimator")]["changed"] is False


def test_runs_show_prints_the_failed_step_and_its_error(capsys, store):
    rec = runs.RunRecorder(store, "broken")
    rec.start("kfops-training", {"seed": 0})
    with pytest.raises(errors.SchemaViolation):
        with rec.step("validate"):
            raise errors.SchemaViolation("age", "range", "3 values > 120")
    code, out, _ = kfops(capsys, store, "runs", "show", "brok")
    assert code == 0
    assert out.splitlines()[0].startswith("run broken  FAILED")
    assert "step 'validate' failed: SchemaViolation: column 'age' violates range" in out


def test_runs_show_unknown_run_exits_with_not_found_code(capsys, store):
    test_runs.record_run(store, "other", seed=1, auc=0.8)
    code, _, err = kfops(capsys, store, "runs", "show", "nope")
    assert code == errors.NotFound.exit_code
    assert "no run 'nope'" in err


def test_runs_compare_of_one_run_exits_with_config_error(capsys, two_runs):
    code, _, err = kfops(capsys, two_runs, "runs", "compare", "run-a")
    assert code == errors.ConfigError.exit_code and "two or more" in err


def test_models_lineage_prints_run_data_and_parent(capsys, store, tmp_path):
    first = test_lineage.train_and_push(store, tmp_path, "run-one", seed=1)
    second = test_lineage.train_and_push(store, tmp_path, "run-two", seed=2)
    code, out, _ = kfops(capsys, store, "models", "lineage", "churn")
    assert code == 0
    assert out.splitlines()[0].startswith("churn v2 (champion)")
    assert line_with(out, "  run ").split()[1:3] == ["run-two", "succeeded,"]
    assert f"sha256 {second['sha256']}" in line_with(out, "  data ")
    assert line_with(out, "  parent ").split()[1:4] == ["v1", "run", "run-one"]
    _, raw, _ = kfops(capsys, store, "models", "lineage", "churn", "1", "--json")
    facts = json.loads(raw)
    assert facts["data"]["data_sha256"] == first["sha256"] and facts["parents"] == []


def test_runs_data_lists_runs_and_models_for_a_hash(capsys, store, tmp_path):
    first = test_lineage.train_and_push(store, tmp_path, "run-one", seed=1)
    test_lineage.train_and_push(store, tmp_path, "run-two", seed=2)
    _, out, _ = kfops(capsys, store, "runs", "data", first["sha256"][:16], "--json")
    found = json.loads(out)
    assert [r["run_id"] for r in found["runs"]] == ["run-one"]
    assert found["models"] == [{"name": "churn", "version": "1"}]
