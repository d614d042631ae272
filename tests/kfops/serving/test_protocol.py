"""V1 and V2 against a real uvicorn server: single rows and batches, classifier and regressor."""

import numpy as np
import pytest

from tests.kfops.serving import factories


def test_v2_health_live_and_ready_answer_200(clf_server):
    assert clf_server.client.get("/v2/health/live").json() == {"live": True}
    assert clf_server.client.get("/v2/health/ready").json() == {"ready": True}


def test_v2_metadata_lists_schema_inputs_and_outputs(clf_server):
    meta = clf_server.client.get("/v2/models/churn").json()
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        ("tenure", "INT64"),
        ("charges", "FP64"),
        ("plan", "BYTES"),
        ("promo", "BOOL"),
    ]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert meta["versions"] == ["1"]


def test_v2_model_ready_answers_under_versions_path(clf_server):
    assert clf_server.client.get("/v2/models/churn/versions/1/ready").json()["ready"] is True
    assert clf_server.client.get("/v2/models/churn/versions/9/ready").status_code == 404


@pytest.mark.parametrize("n", [1, 37])
def test_v1_predict_objects_matches_in_process_predict(clf_server, clf, n):
    pipeline, spec, df = clf
    rows = factories.instances(df, n)
    r = clf_server.client.post("/v1/models/churn:predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == pipeline.predict(df[spec.feature_names].iloc[:n]).tolist()
    assert r.json()["model_version"] == "1"


def test_v1_predict_lists_in_schema_order_equal_objects(clf_server, clf):
    _, spec, df = clf
    rows = factories.instances(df, 5)
    as_lists = [[row[name] for name in spec.feature_names] for row in rows]
    by_lists = clf_server.client.post(
        "/v1/models/churn:predict", json={"instances": as_lists}
    ).json()
    by_objects = clf_server.client.post("/v1/models/churn:predict", json={"instances": rows}).json()
    assert by_lists["predictions"] == by_objects["predictions"]


def test_v1_predict_returns_probabilities_when_asked(clf_server, clf):
    pipeline, spec, df = clf
    body = {"instances": factories.instances(df, 3), "parameters": {"probabilities": True}}
    out = clf_server.client.post("/v1/models/churn:predict", json=body).json()
    assert out["classes"] == [0, 1]
    np.testing.assert_allclose(
        out["probabilities"], pipeline.predict_proba(df[spec.feature_names].iloc[:3])
    )


def test_v1_predict_accepts_null_in_nullable_column(clf_server, clf):
    row = {**factories.instances(clf[2], 1)[0], "charges": None}
    r = clf_server.client.post("/v1/models/churn:predict", json={"instances": [row]})
    assert r.status_code == 200 and r.json()["predictions"][0] in (0, 1)


@pytest.mark.parametrize("n", [1, 64])
def test_v2_infer_returns_predict_and_proba(clf_server, clf, n):
    pipeline, spec, df = clf
    body = {"id": "req-1", "inputs": factories.v2_inputs(factories.instances(df, n))}
    out = clf_server.client.post("/v2/models/churn/infer", json=body).json()
    by_name = {o["name"]: o for o in out["outputs"]}
    expected = df[spec.feature_names].iloc[:n]
    assert out["id"] == "req-1" and out["model_version"] == "1"
    assert by_name["predict"]["data"] == pipeline.predict(expected).tolist()
    assert by_name["predict_proba"]["shape"] == [n, 2]
    np.testing.assert_allclose(
        np.reshape(by_name["predict_proba"]["data"], (n, 2)), pipeline.predict_proba(expected)
    )


def test_v2_infer_returns_only_requested_outputs(clf_server, clf):
    body = {
        "inputs": factories.v2_inputs(factories.instances(clf[2], 2)),
        "outputs": [{"name": "predict"}],
    }
    out = clf_server.client.post("/v2/models/churn/versions/1/infer", json=body).json()
    assert [o["name"] for o in out["outputs"]] == ["predict"]


def test_v2_infer_accepts_nested_n_by_1_data(clf_server, clf):
    inputs = factories.v2_inputs(factories.instances(clf[2], 3))
    for tensor in inputs:
        tensor["shape"], tensor["data"] = [3, 1], [[v] for v in tensor["data"]]
    assert (
        clf_server.client.post("/v2/models/churn/infer", json={"inputs": inputs}).status_code == 200
    )


@pytest.mark.parametrize("n", [1, 50])
def test_regression_v1_and_v2_match_in_process_predict(serve, reg, n):
    pipeline, spec, df = reg
    srv = serve(pipeline, spec, name="spend")
    rows = factories.instances(df, n)
    expected = pipeline.predict(df[spec.feature_names].iloc[:n])
    v1 = srv.client.post("/v1/models/spend:predict", json={"instances": rows}).json()
    v2 = srv.client.post(
        "/v2/models/spend/infer", json={"inputs": factories.v2_inputs(rows)}
    ).json()
    np.testing.assert_allclose(v1["predictions"], expected)
    assert [o["name"] for o in v2["outputs"]] == ["predict"]
    np.testing.assert_allclose(v2["outputs"][0]["data"], expected)


def test_v1_model_status_names_version(clf_server):
    assert clf_server.client.get("/v1/models/churn").json() == {
        "name": "churn",
        "ready": True,
        "version": "1",
    }


def test_v2_server_metadata_names_kfops(clf_server):
    assert clf_server.client.get("/v2").json()["name"] == "kfops"
