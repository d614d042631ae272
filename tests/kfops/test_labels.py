"""Delayed labels: delivery rules (duplicates, corrections, late arrival), CLI and HTTP endpoint."""

import datetime as dt

import httpx
import pandas as pd
import pytest

from kfops import cli, errors, labels
from kfops.serving import app, model, server, settings
from kfops.store import local
from tests.kfops.serving import factories

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def _frame(rows):
    return pd.DataFrame(rows, columns=["request_id", "row", "label"])


def test_delivery_is_stored_in_the_documented_place_and_form(tmp_path):
    st = local.LocalStore(tmp_path)
    got = labels.deliver(st, "churn", _frame([("a", 0, 1), ("a", 1, 0), ("b", 0, 1)]), now=T0)
    assert got.key.startswith("labels/churn/2026-05-01/120000-") and got.rows == 3
    stored = labels.read(st, "churn")
    assert list(stored.columns) == [labels.REQUEST_ID, labels.ROW, labels.LABEL, labels.RECEIVED]
    assert stored[[labels.REQUEST_ID, labels.ROW, labels.LABEL]].values.tolist() == [
        ["a", 0, 1], ["a", 1, 0], ["b", 0, 1]
    ]  # fmt: skip
    assert (stored[labels.RECEIVED] == pd.Timestamp(T0)).all()


def test_row_defaults_to_zero_and_the_models_label_name_is_accepted(tmp_path):
    st = local.LocalStore(tmp_path)
    frame = pd.DataFrame({"kfops_request_id": ["x", "y"], "churned": [1, 0]})
    labels.deliver(st, "churn", frame, label_column="churned", now=T0)
    stored = labels.read(st, "churn")
    assert stored[labels.ROW].tolist() == [0, 0] and stored[labels.LABEL].tolist() == [1, 0]


def test_one_delivery_contradicting_itself_is_refused_and_repeats_count_once(tmp_path):
    st = local.LocalStore(tmp_path)
    with pytest.raises(errors.DataError, match=r"two different labels: a/0"):
        labels.deliver(st, "churn", _frame([("a", 0, 1), ("a", 0, 0)]), now=T0)
    assert list(st.list("labels/")) == []  # nothing stored
    got = labels.deliver(st, "churn", _frame([("a", 0, 1), ("a", 0, 1), ("b", 0, 0)]), now=T0)
    assert (got.rows, got.collapsed) == (2, 1)


def test_a_later_delivery_corrects_an_earlier_one(tmp_path):
    st = local.LocalStore(tmp_path)
    labels.deliver(st, "churn", _frame([("a", 0, 1), ("b", 0, 1)]), now=T0)
    labels.deliver(st, "churn", _frame([("a", 0, 0)]), now=T0 + dt.timedelta(microseconds=1))
    stored = labels.read(st, "churn").set_index(labels.REQUEST_ID)[labels.LABEL]
    assert stored.to_dict() == {"a": 0, "b": 1}
    # as of a time before the correction arrived, the first label stands
    before = labels.read(st, "churn", as_of=T0 + dt.timedelta(microseconds=1))
    assert before.set_index(labels.REQUEST_ID)[labels.LABEL].to_dict() == {"a": 1, "b": 1}


def test_late_labels_join_whenever_their_request_is_read(tmp_path):
    st = local.LocalStore(tmp_path)
    traffic = pd.DataFrame(
        {labels.REQUEST_ID: ["a", "a", "b"], labels.ROW: [0, 1, 0], "x": [1, 2, 3]}
    )
    labels.deliver(st, "churn", _frame([("a", 1, 1)]), now=T0)
    assert labels.join(traffic, labels.read(st, "churn"))["x"].tolist() == [2]
    labels.deliver(st, "churn", _frame([("b", 0, 0), ("zzz", 0, 1)]), now=T0 + dt.timedelta(days=9))
    joined = labels.join(traffic, labels.read(st, "churn"))
    assert joined["x"].tolist() == [2, 3]  # the late one counts; the unknown id matches nothing
    assert labels.join(traffic, labels.read(st, "churn", as_of=T0 + dt.timedelta(days=1)))[
        "x"
    ].tolist() == [2]


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (pd.DataFrame({"request_id": ["a"]}), "kfops_label"),
        (pd.DataFrame({"label": [1]}), "kfops_request_id"),
        (pd.DataFrame({"request_id": ["a"], "label": [None]}), "non-null"),
        (pd.DataFrame({"request_id": [""], "label": [1]}), "non-empty"),
        (pd.DataFrame({"request_id": ["a"], "row": [-1], "label": [1]}), "integer >= 0"),
        (pd.DataFrame({"request_id": ["a"], "row": [0.5], "label": [1]}), "integer >= 0"),
    ],
)
def test_bad_deliveries_name_the_problem(tmp_path, frame, problem):
    with pytest.raises(errors.DataError, match=problem):
        labels.deliver(local.LocalStore(tmp_path), "churn", frame)


def test_cli_adds_a_csv_and_reports_status(tmp_path, capsys):
    path = tmp_path / "labels.csv"
    path.write_text("request_id,row,label\n007,0,1\n007,1,0\n")
    base = ["--store", str(tmp_path / "st"), "--name", "churn"]
    assert cli.main(["labels", "add", *base, "--file", str(path)]) == 0
    assert "stored 2 labels for churn" in capsys.readouterr().out
    stored = labels.read(local.LocalStore(tmp_path / "st"), "churn")
    assert stored[labels.REQUEST_ID].tolist() == ["007", "007"]  # ids stay text: no 007 -> 7
    assert cli.main(["labels", "status", *base]) == 0
    assert "2 labelled request rows in 1 deliveries" in capsys.readouterr().out


def test_cli_bad_file_is_one_line_and_exit_3(tmp_path, capsys):
    path = tmp_path / "labels.csv"
    path.write_text("id,outcome\na,1\n")
    code = cli.main(
        ["labels", "add", "--store", str(tmp_path), "--name", "churn", "--file", str(path)]
    )
    err = capsys.readouterr().err
    assert code == errors.DataError.exit_code == 3
    assert err.count("\n") == 1 and "kfops_request_id" in err and "Traceback" not in err


def _server(tmp_path, store):
    pipeline, spec, _ = factories.classifier()
    source = model.MemorySource()
    source.add("churn", pipeline, spec, "1")
    cfg = settings.ServeConfig(name="churn", poll_seconds=0)
    return server.running(app.build_app(cfg, source, store))


def test_http_endpoint_stores_a_delivery_by_the_same_rules(tmp_path):
    st = local.LocalStore(tmp_path / "st")
    with _server(tmp_path, st) as url, httpx.Client(base_url=url, timeout=30) as client:
        body = {
            "labels": [{"request_id": "r1", "row": 1, "label": 0}, {"request_id": "r2", "label": 1}]
        }
        ok = client.post("/v2/models/churn/labels", json=body)
        assert ok.status_code == 200, ok.text
        assert ok.json()["accepted"] == 2 and ok.json()["key"].startswith("labels/churn/")
        clash = {"labels": [{"request_id": "r", "label": 0}, {"request_id": "r", "label": 1}]}
        assert client.post("/v2/models/churn/labels", json=clash).status_code == 400
        assert client.post("/v2/models/churn/labels", json={"labels": []}).status_code == 400
        assert client.post("/v2/models/other/labels", json=body).status_code == 404
    stored = labels.read(st, "churn")
    assert stored[[labels.REQUEST_ID, labels.ROW, labels.LABEL]].values.tolist() == [
        ["r1", 1, 0], ["r2", 0, 1]
    ]  # fmt: skip


def test_http_endpoint_without_a_store_says_so(tmp_path):
    with _server(tmp_path, None) as url:
        r = httpx.post(
            f"{url}/v2/models/churn/labels", json={"labels": [{"request_id": "a", "label": 1}]}
        )
    assert r.status_code == 503 and "--store" in r.json()["error"]
