"""The continuous-training loop on fresh data, end to end (issue 13).

train v1 -> serve it (real HTTP server) -> drifted traffic -> labels delivered for part of it ->
`kfops monitor --retrain` decides to retrain -> the loop builds a snapshot of v1's training rows
plus the labelled traffic -> v2 trains on it, is blessed and becomes champion -> new traffic is
answered by v2, and each version is judged on its own traffic -> v2 rebuilt from its lineage
snapshot and seed gives the same model bytes.

Rows are as few as keep every decision clear of its threshold: v1 trains on 800 rows, 600 drifted
rows are sent (drift 1 moves tenure, charges, contract and region), 500 of them get labels.
"""

import json

import pandas as pd
import pytest

from kfops import cli, dataio, lineage, registry, runs, snapshots, store, traffic
from kfops.serving import app, model, server, settings

pytestmark = pytest.mark.slow

FAST = ["--param", "search_iterations=2", "--param", "cv_folds=2"]
# Split by time: a retraining row's time is its request's, so the newest rows, the test split on
# which the gate compares candidate and champion, are labelled traffic the champion never saw.
# (With a random split the champion would be scored on its own training rows, which the new
# snapshot contains, and win by memory.)
# Slice and fairness rules are off: on the few hundred newest rows they judge sampling noise,
# and this test is about where the data comes from and goes (the gate has its own tests).
BY_TIME = ["--param", "split_strategy=time", "--param", "time_column=signup_date",
           "--param", "slice_floor=-1", "--param", "max_fairness_gap=-1"]  # fmt: skip


def _serve_and_send(st, rows, drift, seed):
    cfg = settings.ServeConfig(name="churn", port=0, poll_seconds=0, check_range=False,
                               check_domain=False, log_flush_seconds=0.2)  # fmt: skip
    served = app.build_app(cfg, model.RegistrySource(registry.Registry(st)), st)
    with server.running(served, drain_seconds=2) as url:
        sent = traffic.simulate(
            traffic.TrafficConfig(url, "churn", rows, drift, seed, batch_size=100)
        )
    assert sent.rows_accepted == rows, sent.first_error
    return sent


def _json_out(capsys):
    return json.loads(capsys.readouterr().out)


def _train_sha(st_dir, run_id):
    step = dataio.read_json(st_dir / "runs" / run_id / "steps" / "train.json")
    return next(o["sha256"] for o in step["outputs"] if o["name"] == "model")


def test_retraining_learns_from_labelled_traffic_and_versions_are_judged_apart(tmp_path, capsys):
    st_dir, runs_dir = tmp_path / "store", str(tmp_path / "runs")
    common = ["--store", str(st_dir), "--runs-dir", runs_dir]
    assert cli.main(["run", "--source", "builtin:churn?rows=800&seed=1", "--json",
                     *common, *FAST, *BY_TIME]) == 0  # fmt: skip
    first = _json_out(capsys)
    assert first["blessed"] is True and first["model_version"] == "1"
    st = store.open_store(str(st_dir))
    reg = registry.Registry(st)
    v1 = reg.manifest("churn", "1")["metadata"]["lineage"]
    assert snapshots.read_metadata(st, v1["data_sha256"])["rows"] == 800
    assert v1["data_snapshot"] == f"data/{v1['data_sha256']}/data.parquet"

    # production: drifted traffic, answered by v1 and logged; labels arrive for 500 of 600 rows
    sent = _serve_and_send(st, 600, drift=1.0, seed=7)
    truth = sent.labels.rename(columns={"kfops_request_id": "request_id", "kfops_row": "row"})
    truth.head(500).to_csv(tmp_path / "labels.csv", index=False)
    add = ["labels", "add", "--store", str(st_dir), "--name", "churn",
           "--file", str(tmp_path / "labels.csv"), "--label-column", "churned"]  # fmt: skip
    assert cli.main(add) == 0
    capsys.readouterr()

    argv = ["monitor", "--name", "churn", "--retrain", "--min-rows", "200", "--json",
            "--min-labelled-rows", "300", "--max-old-share", "1.0",
            "--out-dir", str(tmp_path / "mon"), *common]  # fmt: skip
    # the labelled traffic leaves v1's trained range: validated against v1's schema, retraining
    # is blocked, naming the column
    assert cli.main(argv) == 1
    blocked = _json_out(capsys)["retraining"]
    assert blocked["status"] == "failed" and "ValidationFailed" in blocked["error"], blocked
    assert "'monthly_charges' violates out_of_range" in blocked["error"]
    fresh_rows = blocked["fresh_data"]
    assert (fresh_rows["rows"], fresh_rows["labelled_rows"]) == (1300, 500)
    # a person reviews the change and accepts it; then the loop retrains on the same snapshot
    assert cli.main(["schema", "accept", "churn", "--source", fresh_rows["source"],
                     "--reason", "prices rose", "--by", "test",
                     "--store", str(st_dir)]) == 0  # fmt: skip
    capsys.readouterr()
    code = cli.main(argv)
    summary = _json_out(capsys)
    assert code == 0, summary.get("retraining")
    assert summary["retraining"]["fresh_data"]["sha256"] == fresh_rows["sha256"]
    assert summary["retrain"] is True and summary["rows"] == 600 and summary["version"] == "1"
    assert summary["labelled_rows"] == 500  # the stored labels reached the monitor too
    retrained = summary["retraining"]
    assert retrained["status"] == "succeeded" and retrained["blessed"] is True, retrained
    assert retrained["model_version"] == "2" and reg.champion("churn") == "2"

    # v2 trained on v1's 800 rows plus the 500 labelled logged rows, and says so
    v2 = reg.manifest("churn", "2")["metadata"]["lineage"]
    assert v2["data_parents"] == [v1["data_sha256"]] and v2["rows"] == 1300
    built = snapshots.read_metadata(st, v2["data_sha256"])
    assert built["parents"] == [v1["data_sha256"]] and built["rows"] == 1300
    assert built["fresh"]["labelled_rows"] == 500 and built["fresh"]["old_rows_kept"] == 800
    assert built["fresh"]["traffic_versions"] == ["1"]
    rows = snapshots.read(st, v2["data_sha256"])
    labelled = rows[rows["customer_id"].str.startswith("sim-")]
    assert len(labelled) == 500
    assert labelled["churned"].tolist() == truth.head(500)["churned"].tolist()
    facts = lineage.model_lineage(reg, runs.RunIndex(st), "churn")
    assert facts["data"]["parents"] == [v1["data_sha256"]]
    assert [p["version"] for p in facts["parents"]] == ["1"]
    # retraining trained the way v1 was trained: its recorded parameters were carried over
    assert facts["parameters"]["search_iterations"] == 2 and facts["parameters"]["cv_folds"] == 2
    assert facts["parameters"]["split_strategy"] == "time"
    assert (rows["signup_date"].iloc[800:] > rows["signup_date"].iloc[:800].max()).all()

    # v2 serves calm traffic; each version is judged on the traffic it answered
    _serve_and_send(st, 300, drift=0.0, seed=8)
    judged = {}
    for version in ("1", "2"):
        out = tmp_path / f"judge-{version}"
        judge = ["monitor", "--name", "churn", "--model-version", version, "--json",
                 "--min-rows", "200", "--out-dir", str(out), "--store", str(st_dir)]  # fmt: skip
        assert cli.main(judge) == 0
        judged[version] = _json_out(capsys)
    assert (judged["1"]["version"], judged["1"]["rows"], judged["1"]["retrain"]) == ("1", 600, True)
    assert (judged["2"]["version"], judged["2"]["rows"]) == ("2", 300)

    # v2 rebuilt from its lineage snapshot and seed: the same model bytes
    export = tmp_path / "v2-rows.parquet"
    assert cli.main(["runs", "data", v2["data_sha256"], "--out", str(export),
                     "--store", str(st_dir)]) == 0  # fmt: skip
    capsys.readouterr()
    assert dataio.sha256_file(export) == v2["data_sha256"]
    rebuild = ["run", "--source", str(export), "--label", "churned", "--seed", str(v2["seed"]),
               "--name", "churn-rebuilt", "--json", *common, *FAST, *BY_TIME]  # fmt: skip
    assert cli.main(rebuild) == 0
    again = _json_out(capsys)
    assert _train_sha(st_dir, again["run_id"]) == v2["model_sha256"]
    assert pd.read_parquet(export).shape == (1300, 13)
