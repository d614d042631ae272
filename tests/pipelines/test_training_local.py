"""The training pipeline end to end through kfp.local, via `kfops run`, on small builtin data."""

import json

import pytest

from kfops import cli, errors, registry, runs, store

pytestmark = pytest.mark.slow

SOURCE = "builtin:churn?rows=1500&seed=1"
FAST = ["--param", "search_iterations=2", "--param", "cv_folds=2"]


def run(capsys, tmp_path, *extra, store_dir=None):
    store_dir = store_dir or tmp_path / "store"
    argv = [
        "run",
        "--source",
        SOURCE,
        "--store",
        str(store_dir),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--json",
        *FAST,
        *extra,
    ]
    code = cli.main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else out


def test_run_registers_a_blessed_model_with_reports(capsys, tmp_path):
    code, summary = run(capsys, tmp_path)
    assert code == 0, summary
    assert summary["status"] == "succeeded" and summary["blessed"] is True, summary
    assert summary["model_version"] == "1"
    assert summary["metrics"]["roc_auc"] > summary["metrics"]["baseline/roc_auc"] + 0.05
    reg = registry.Registry(store.open_store(str(tmp_path / "store")))
    assert reg.champion("churn") == "1"
    loaded = reg.load("churn")
    assert "churned" not in loaded.schema.feature_names
    assert loaded.manifest["metadata"]["lineage"]["run_id"] == summary["run_id"]
    for name in ("validation", "evaluation", "model_card"):
        text = open(summary["reports"][name], encoding="utf-8").read()
        assert len(text) > 200, name
    assert "<html" in open(summary["reports"]["evaluation"], encoding="utf-8").read().lower()
    # explanations (#19): the evaluate component logs them as flat keys, to KFP Metrics and to
    # its step record in the same loop; the model card carries their tables
    shown = runs.RunIndex(store.open_store(str(tmp_path / "store"))).show(summary["run_id"])
    logged = next(s for s in shown["steps"] if s["step"] == "evaluate")["metrics"]
    assert logged["importance/tenure_months"] > logged["importance/region"], logged
    assert {"class/0/f1", "class/1/f1", "class/1/support"} <= set(logged), logged
    card = open(summary["reports"]["model_card"], encoding="utf-8").read()
    assert "Permutation importance" in card and "Most confidently wrong" in card


def test_run_with_impossible_threshold_is_rejected_and_registers_nothing(capsys, tmp_path):
    code, summary = run(capsys, tmp_path, "--param", 'gate_thresholds={"roc_auc": 0.999}')
    assert code == 0, summary
    assert summary["blessed"] is False
    assert any("roc_auc" in r and "0.999" in r for r in summary["reasons"])
    assert summary["model_version"] is None
    assert registry.Registry(store.open_store(str(tmp_path / "store"))).versions("churn") == []


def test_run_is_reproducible_for_same_data_and_seed_at_any_thread_count(capsys, tmp_path):
    # The rule (tests/kfops/test_threads.py): every estimator here gives the same model bytes at
    # any thread count, so runs with 1 and 2 threads must match; each records its own count.
    # Read from the train step's record, so the comparison holds whatever the gate decides.
    _, first = run(capsys, tmp_path, "--param", "n_threads=1", store_dir=tmp_path / "a")
    _, second = run(capsys, tmp_path, "--param", "n_threads=2", store_dir=tmp_path / "b")
    trained = []
    for d, summary in (("a", first), ("b", second)):
        shown = runs.RunIndex(store.open_store(str(tmp_path / d))).show(summary["run_id"])
        trained.append(next(s for s in shown["steps"] if s["step"] == "train"))
    assert [t["runtime"]["threads"] for t in trained] == [1, 2]
    shas = [next(o for o in t["outputs"] if o["name"] == "model")["sha256"] for t in trained]
    assert shas[0] == shas[1]
    assert first["metrics"] == second["metrics"]


def test_run_rejects_a_model_worse_than_the_champion(capsys, tmp_path, overfit_champion):
    overfit_champion(tmp_path / "store", SOURCE)
    code, summary = run(capsys, tmp_path)
    assert code == 0, summary
    assert summary["blessed"] is False
    assert any("champion" in r for r in summary["reasons"]), summary["reasons"]
    reg = registry.Registry(store.open_store(str(tmp_path / "store")))
    assert reg.champion("churn") == "1" and reg.versions("churn") == ["1"]


def test_run_fails_with_clear_error_for_missing_label(capsys, tmp_path):
    code, out = run(capsys, tmp_path, "--label", "no_such_column")
    assert code != 0
    assert out["status"] == "failed" and "no_such_column" in out["error"], out


def test_a_deploy_that_fails_after_the_push_fails_the_run_and_shows_in_runs_show(capsys, tmp_path):
    """No cluster here, so the real deploy step fails to connect: after the push, for real."""
    code, summary = run(capsys, tmp_path, "--param", "deploy=true")
    assert code == errors.ConfigError.exit_code, summary
    assert summary["status"] == "failed" and summary["failed_step"] == "deploy", summary
    assert summary["model_version"] == "1" and summary["blessed"] is True
    assert summary["deploy"]["status"] == "failed"
    assert cli.main(["runs", "show", summary["run_id"], "--store", str(tmp_path / "store")]) == 0
    shown = capsys.readouterr().out
    assert "FAILED" in shown and "step 'deploy' failed" in shown and "model churn v1" in shown
    assert "deploy failed: ConfigError" in shown
