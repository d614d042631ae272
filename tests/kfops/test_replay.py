"""`kfops replay`: any CSV sent to a real server as traffic, with request ids the log and the
labels share, paced, drifted on request."""

import time

import pandas as pd
import pytest

from kfops import cli, datasets, errors, replay
from kfops.monitor import core
from tests.kfops.test_traffic import _logged


@pytest.fixture
def churn_csv(tmp_path):
    """Rows as a user would have them: an id column and the label beside the features."""
    path = tmp_path / "mine.csv"
    datasets.churn(90, seed=5).to_csv(path, index=False)
    return path


def test_replay_sends_a_csv_the_server_logs_with_joinable_labels(churn_server, churn_csv, tmp_path):
    url, store = churn_server
    out = tmp_path / "labels.parquet"
    argv = ["--url", url, "--name", "churn", "--source", str(churn_csv), "--batch-size", "40"]
    code = cli.main(["replay", *argv, "--label", "churned", "--labels-out", str(out)])
    assert code == 0
    labels = pd.read_parquet(out)
    assert sorted(set(labels["kfops_request_id"])) == [f"replay-0-{i:07d}" for i in range(3)]
    logged = _logged(store, 90)
    assert len(logged) == 90
    joined = core.join_labels(logged, labels, "churned")
    sent = pd.read_csv(churn_csv)
    batch = joined["kfops_request_id"].str.rsplit("-", n=1).str[-1].astype(int)
    index = (batch * 40 + joined["kfops_row"]).to_numpy()
    assert sorted(index) == list(range(90))
    assert joined["churned"].tolist() == sent["churned"].to_numpy()[index].tolist()


def test_replay_paces_requests_at_the_rate(churn_server, churn_csv):
    url, _ = churn_server
    started = time.monotonic()
    result = replay.replay(replay.ReplayConfig(name="churn", source=str(churn_csv), url=url,
                                               rate=10.0, batch_size=10, rows=50))  # fmt: skip
    took = time.monotonic() - started
    assert (result.requests, result.rows_accepted) == (5, 50)
    assert took >= 0.4  # 5 requests at 10/s: the last leaves 0.4 s after the first


def test_replay_drift_shifts_numeric_features_by_their_std():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "flag": [True, False, True], "c": ["a", "b", "a"]})
    moved = replay.shifted(frame, ["x", "flag", "c"], 2.0)
    assert moved["x"].tolist() == [3.0, 4.0, 5.0]  # std of 1, 2, 3 is 1
    assert moved["flag"].tolist() == frame["flag"].tolist()
    assert moved["c"].tolist() == frame["c"].tolist()


def test_replay_names_a_missing_model_input(churn_server, tmp_path):
    url, _ = churn_server
    path = tmp_path / "other.csv"
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(path, index=False)
    with pytest.raises(errors.ConfigError, match=r"model 'churn' takes \[.*that .*other.csv lacks"):
        replay.replay(replay.ReplayConfig(name="churn", source=str(path), url=url))
