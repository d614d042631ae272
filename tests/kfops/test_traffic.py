import json
import time

import pandas as pd
import pytest

from kfops import cli, datasets, errors, logschema, monitor, traffic
from kfops.monitor import core, window


def _logged(store, rows, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = monitor.read_window(store, "churn", monitor.Window())
        if len(got) >= rows:
            return got
        time.sleep(0.1)
    return got


def test_simulate_sends_bounded_stream_that_server_logs_with_joinable_labels(churn_server):
    url, store = churn_server
    result = traffic.simulate(traffic.TrafficConfig(url, "churn", rows=120, seed=3, batch_size=50))
    assert (result.requests, result.rows_accepted, result.statuses) == (3, 120, {200: 3})
    assert result.labels[window.ROW].tolist() == list(range(50)) * 2 + list(range(20))
    logged = _logged(store, 120)
    assert len(logged) == 120
    joined = core.join_labels(logged, result.labels, "churned")
    sent = datasets.churn(120, seed=3)
    batch = joined[logschema.REQUEST_ID].str.rsplit("-", n=1).str[-1].astype(int)
    index = (batch * 50 + joined[window.ROW]).to_numpy()
    assert sorted(index) == list(range(120))
    assert joined["churned"].tolist() == sent["churned"].to_numpy()[index].tolist()
    assert joined["tenure_months"].tolist() == sent["tenure_months"].to_numpy()[index].tolist()


def test_simulate_counts_rejections_and_keeps_the_first_reason(strict_churn_server):
    url, _ = strict_churn_server
    cfg = traffic.TrafficConfig(url, "churn", rows=40, drift=3.0, seed=1, batch_size=10)
    result = traffic.simulate(cfg)  # strong drift: charges beyond the training range get a 4xx
    assert result.rows_accepted < 40
    assert sum(n for s, n in result.statuses.items() if 400 <= s < 500) >= 1
    assert "monthly_charges" in result.first_error or "total_charges" in result.first_error


def test_simulate_names_unreachable_server():
    with pytest.raises(errors.ConfigError, match="cannot reach http://127.0.0.1:9"):
        traffic.simulate(traffic.TrafficConfig("http://127.0.0.1:9", "churn", timeout=2))


def test_simulate_names_model_the_server_does_not_serve(churn_server):
    url, _ = churn_server
    with pytest.raises(errors.ConfigError, match="answered HTTP 404"):
        traffic.simulate(traffic.TrafficConfig(url, "other"))


@pytest.mark.parametrize(
    "kw",
    [
        {"rows": 0},
        {"rows": traffic.MAX_ROWS + 1},
        {"batch_size": 0},
        {"drift": -1.0},
        {"url": "ftp://x"},
    ],
)
def test_traffic_config_rejects_unbounded_or_bad_values(kw):
    args = {"url": "http://127.0.0.1:8080", "name": "churn", **kw}
    with pytest.raises(errors.ConfigError):
        traffic.TrafficConfig(**args)


def test_instances_are_json_with_nulls_for_missing_values():
    frame = datasets.churn(200, seed=0)
    rows = traffic.instances(frame, ["total_charges", "has_internet", "support_calls"])
    text = json.dumps(rows)  # plain JSON types only
    assert "NaN" not in text
    assert any(r["total_charges"] is None for r in rows)
    assert {type(r["has_internet"]) for r in rows} == {bool}


def test_cli_simulate_traffic_prints_json_tally_and_writes_labels(churn_server, capsys, tmp_path):
    url, _ = churn_server
    labels = tmp_path / "labels.parquet"
    argv = ["simulate-traffic", "--url", url, "--rows", "30", "--json", "--labels-out", str(labels)]
    assert cli.main(argv) == 0
    tally = json.loads(capsys.readouterr().out)
    assert tally["rows_accepted"] == 30 and tally["statuses"] == {"200": 1}
    written = pd.read_parquet(labels)
    assert list(written.columns) == [logschema.REQUEST_ID, window.ROW, "churned"]
    assert len(written) == 30
