"""`kfops serve --passthrough COL` (issue 14, item 9): records may carry a field that is not a model
input; it never reaches the model, is logged with the request and echoed in V1 answers. Without
the flag such a field is still a 400 that names it and the flag. `kfops replay --id-column` sends
the records' ids, so they reach the log."""

import pytest

from kfops import cli, datasets, errors, replay
from kfops.serving import settings
from tests.fixtures import monitoring
from tests.kfops.test_traffic import _logged


@pytest.fixture
def id_server(tmp_path):
    # its own store: a test that also starts churn_server (same tmp_path) must not read that
    # server's log rows as this one's
    own = tmp_path / "passthrough"
    own.mkdir()
    yield from monitoring._serve_churn(own, passthrough=("customer_id",))


def _records(n: int, seed: int = 4) -> tuple[list[dict], list]:
    frame = datasets.churn(n, seed=seed)
    features = [c for c in frame.columns if c not in ("customer_id", "churned", "signup_date")]
    rows = frame[[*features, "customer_id"]].to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows], [
        r["customer_id"] for r in rows
    ]


def _post(url: str, instances: list[dict]):
    import httpx

    return httpx.post(f"{url}/v1/models/churn:predict", json={"instances": instances}, timeout=30)


def test_without_the_flag_an_extra_field_is_a_400_naming_it_and_the_flag(churn_server):
    url, _ = churn_server
    records, _ = _records(3)
    answer = _post(url, records)
    assert answer.status_code == 400
    text = answer.text
    assert "customer_id" in text and "--passthrough customer_id" in text


def test_passed_through_ids_are_echoed_and_logged_row_for_row_not_fed_to_the_model(
    id_server, churn_server
):
    url, store = id_server
    plain_url, _ = churn_server
    records, ids = _records(7)
    records[2] = {k: v for k, v in records[2].items() if k != "customer_id"}  # one without
    answer = _post(url, records)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected_ids = [*ids[:2], None, *ids[3:]]
    assert body["passthrough"] == {"customer_id": expected_ids}
    # the model answers exactly as it does for the same records without the field
    bare = [{k: v for k, v in r.items() if k != "customer_id"} for r in records]
    assert body["predictions"] == _post(plain_url, bare).json()["predictions"]
    logged = _logged(store, 7)
    assert logged["customer_id"].tolist() == expected_ids
    assert logged["kfops_prediction"].tolist() == body["predictions"]


def test_replay_with_an_id_column_puts_the_records_ids_in_the_log(id_server, tmp_path):
    url, store = id_server
    path = tmp_path / "mine.csv"
    sent = datasets.churn(60, seed=5)
    sent.to_csv(path, index=False)
    argv = ["replay", "--url", url, "--name", "churn", "--source", str(path)]
    assert cli.main([*argv, "--batch-size", "25", "--id-column", "customer_id"]) == 0
    logged = _logged(store, 60)
    assert sorted(logged["customer_id"]) == sorted(sent["customer_id"].astype(str))


def test_replay_names_an_id_column_the_data_lacks(id_server, tmp_path):
    url, _ = id_server
    path = tmp_path / "mine.csv"
    datasets.churn(10, seed=5).to_csv(path, index=False)
    cfg = replay.ReplayConfig(name="churn", source=str(path), url=url, id_column="order_no")
    with pytest.raises(errors.ConfigError, match="--id-column 'order_no' is not a column"):
        replay.replay(cfg)


def test_replay_id_column_to_a_server_without_passthrough_reports_the_400(churn_server, tmp_path):
    url, _ = churn_server
    path = tmp_path / "mine.csv"
    datasets.churn(10, seed=5).to_csv(path, index=False)
    cfg = replay.ReplayConfig(name="churn", source=str(path), url=url, id_column="customer_id")
    result = replay.replay(cfg)
    assert result.rows_accepted == 0 and "--passthrough customer_id" in result.first_error


@pytest.mark.parametrize("bad", ["customer_id", ("",), ("kfops_prediction",)])
def test_serve_config_refuses_a_passthrough_that_is_not_a_list_of_names(bad):
    with pytest.raises(errors.ConfigError, match="passthrough"):
        settings.ServeConfig(name="churn", passthrough=bad)


def test_serve_flag_sets_the_passthrough_fields():
    from kfops.commands import serve

    args = cli.build_parser("serve").parse_args(
        ["serve", "--name", "churn", "--passthrough", "id", "--passthrough", "order"]
    )
    assert serve.serve_config(args).passthrough == ("id", "order")
    # the cluster's ConfigMap passes one value: comma-separated names, or empty for none
    for value, want in (("id,order", ("id", "order")), ("", ())):
        args = cli.build_parser("serve").parse_args(
            ["serve", "--name", "c", "--passthrough", value]
        )
        assert serve.serve_config(args).passthrough == want
