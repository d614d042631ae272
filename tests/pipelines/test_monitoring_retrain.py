"""The monitoring loop's outcome is fixed: drifted traffic retrains, and the new model replaces
the champion (issue 15.11).

Deterministic by construction, not by luck: every source, split, search and traffic stream is
seeded, and the scenario leaves a margin on each rule. The champion is trained on 800 rows of the
reference distribution; the retraining data is 3000 rows of the drifted one, so on the drifted
test rows the candidate beats the champion by far more than the gate's tolerance, and all
features that drift (tenure, charges, contract, region at drift 1) exceed the drift share.
"""

import json

import pytest

from kfops import cli, registry, store, traffic
from kfops.serving import app, model, server, settings

pytestmark = pytest.mark.slow

FAST = ["--param", "search_iterations=2", "--param", "cv_folds=2"]


def test_drifted_traffic_retrains_and_the_new_model_becomes_champion(tmp_path, capsys):
    st_dir, runs = tmp_path / "store", str(tmp_path / "runs")
    base = ["--store", str(st_dir), "--runs-dir", runs, *FAST]
    first = ["run", "--source", "builtin:churn?rows=800&seed=1", "--json", *base]
    assert cli.main(first) == 0
    champion_run = json.loads(capsys.readouterr().out)
    assert champion_run["blessed"] is True and champion_run["model_version"] == "1"
    st = store.open_store(str(st_dir))
    cfg = settings.ServeConfig(name="churn", port=0, poll_seconds=0, check_range=False,
                               check_domain=False, log_flush_seconds=0.2)  # fmt: skip
    served = app.build_app(cfg, model.RegistrySource(registry.Registry(st)), st)
    with server.running(served, drain_seconds=2) as url:
        sent = traffic.simulate(traffic.TrafficConfig(url, "churn", 600, 1.0, 7, batch_size=200))
    assert sent.rows_accepted == 600
    argv = ["monitor", "--name", "churn", "--retrain", "--min-rows", "200", "--json",
            "--source", "builtin:churn?rows=3000&seed=2&drift=1",
            "--out-dir", str(tmp_path / "mon"), *base]  # fmt: skip
    code = cli.main(argv)
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert summary["retrain"] is True and summary["rows"] == 600
    assert summary["drift_share"] >= 0.3, summary["drifted_columns"]
    retrained = summary["retraining"]
    assert retrained["status"] == "succeeded" and retrained["blessed"] is True, retrained
    assert retrained["reasons"] == [] and retrained["model_version"] == "2"
    reg = registry.Registry(st)
    assert reg.champion("churn") == "2"
    assert reg.champion_pointer("churn")["previous"] == ["1"]
    assert reg.load("churn").version == "2"
