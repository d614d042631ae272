"""The official V2 client, tritonclient.http, against the server: binary (its default) and JSON."""

import struct

import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.kfops.serving import factories, triton

KINDS = ["linear", "hist_gradient_boosting", "regression"]


def _model(kind, clf, reg):
    if kind == "linear":
        return clf
    if kind == "regression":
        return reg
    return factories.trees(kind)


def _client(srv) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(srv.url.removeprefix("http://"))


@pytest.mark.parametrize("kind", KINDS)
def test_binary_defaults_answer_as_the_model_does_in_process(serve, clf, reg, kind):
    pipeline, spec, df = _model(kind, clf, reg)
    name = "spend" if kind == "regression" else "churn"
    srv = serve(pipeline, spec, name=name, log_sample_rate=0)
    client = _client(srv)
    for start, n in ((0, 1), (5, 3), (10, 60)):
        columns = triton.arrays(df, start, n, nulls=True)
        # Defaults: inputs as binary data, no outputs named -> every output as binary data.
        result = client.infer(name, triton.inputs(httpclient, columns))
        raw = result.get_response()
        assert all("binary_data_size" in o["parameters"] for o in raw["outputs"]), raw
        triton.assert_answers(result, pipeline, columns)


def test_json_mode_answers_the_same(serve, clf):
    pipeline, spec, df = clf
    srv = serve(pipeline, spec, log_sample_rate=0)
    columns = triton.arrays(df, 20, 25, nulls=False)  # JSON has no NaN: no nulls this way
    outputs = [
        httpclient.InferRequestedOutput("predict", binary_data=False),
        httpclient.InferRequestedOutput("predict_proba", binary_data=False),
    ]
    result = _client(srv).infer("churn", triton.inputs(httpclient, columns, False), outputs=outputs)
    assert all("data" in o for o in result.get_response()["outputs"])
    triton.assert_answers(result, pipeline, columns)


def test_binary_inputs_with_one_json_and_one_binary_output(serve, clf):
    pipeline, spec, df = clf
    srv = serve(pipeline, spec, log_sample_rate=0)
    columns = triton.arrays(df, 0, 7, nulls=True)
    outputs = [
        httpclient.InferRequestedOutput("predict", binary_data=False),
        httpclient.InferRequestedOutput("predict_proba", binary_data=True),
    ]
    result = _client(srv).infer("churn", triton.inputs(httpclient, columns), outputs=outputs)
    by_name = {o["name"]: o for o in result.get_response()["outputs"]}
    assert (
        "data" in by_name["predict"]
        and "binary_data_size" in by_name["predict_proba"]["parameters"]
    )
    triton.assert_answers(result, pipeline, columns)


def test_string_labels_come_back_as_bytes_tensors(serve, clf):
    pipeline, spec, df = clf
    labelled = factories.classifier()[0].set_params()  # same features, labels as strings
    labelled.fit(df[spec.feature_names], df["churned"].map({0: "stays", 1: "leaves"}))
    srv = serve(labelled, spec, log_sample_rate=0)
    columns = triton.arrays(df, 0, 9, nulls=False)
    result = _client(srv).infer("churn", triton.inputs(httpclient, columns))
    labels, _ = triton.expected(labelled, columns)
    assert [v.decode() for v in result.as_numpy("predict")] == labels.tolist()


def test_server_metadata_lists_the_binary_extension_and_the_model_is_ready(serve, clf):
    srv = serve(*clf[:2], log_sample_rate=0)
    client = _client(srv)
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    assert client.is_server_ready() and client.is_model_ready("churn")
    inputs = {i["name"]: i["datatype"] for i in client.get_model_metadata("churn")["inputs"]}
    assert inputs == {"tenure": "INT64", "charges": "FP64", "plan": "BYTES", "promo": "BOOL"}


def test_a_bad_binary_value_is_a_400_naming_the_field(serve, clf):
    srv = serve(*clf[:2], log_sample_rate=0)
    columns = triton.arrays(clf[2], 0, 3, nulls=False)
    columns["plan"] = np.array(["basic", "platinum", "pro"], dtype=object)
    with pytest.raises(InferenceServerException) as caught:
        _client(srv).infer("churn", triton.inputs(httpclient, columns))
    assert caught.value.status() == "400"
    assert "'plan'" in caught.value.message() and "platinum" in caught.value.message()


def _binary_body(sizes: dict[str, int], payload: bytes, header: int | None = None):
    """A hand-made binary request: the JSON header, then `payload`."""
    types = {"tenure": "INT64", "charges": "FP64", "plan": "BYTES", "promo": "BOOL"}
    inputs = [
        {"name": n, "shape": [1], "datatype": types[n], "parameters": {"binary_data_size": s}}
        for n, s in sizes.items()
    ]
    head = orjson.dumps({"inputs": inputs})
    length = len(head) if header is None else header
    return head + payload, {"inference-header-content-length": str(length)}


ONE_ROW = {"tenure": 8, "charges": 8, "plan": 9, "promo": 1}
ROW_BYTES = (
    struct.pack("<q", 3) + struct.pack("<d", 50.0) + struct.pack("<I", 5) + b"basic" + b"\x01"
)


@pytest.mark.parametrize(
    ("sizes", "payload", "header", "fragments"),
    [
        (ONE_ROW, ROW_BYTES + b"xx", None, ["add up to 26", "28 bytes"]),
        ({**ONE_ROW, "promo": 5}, ROW_BYTES, None, ["'promo'", "runs past the end"]),
        ({**ONE_ROW, "tenure": 4, "charges": 12}, ROW_BYTES, None, ["'tenure'", "4 does not hold"]),
        (ONE_ROW, ROW_BYTES[:16] + struct.pack("<I", 50) + b"basic" + b"\x01", None, ["'plan'"]),
        (ONE_ROW, ROW_BYTES, 10_000, ["inference-header-content-length", "'10000'"]),
        (ONE_ROW, ROW_BYTES[:20] + b"\xff\xfe\xfd\xfc\xfb" + b"\x01", None, ["'plan'", "UTF-8"]),
    ],
    ids=["extra-bytes", "overrun", "wrong-size", "bad-length-prefix", "bad-header", "not-utf8"],
)
def test_malformed_binary_requests_are_a_400_naming_the_problem(
    clf_server, sizes, payload, header, fragments
):
    body, headers = _binary_body(sizes, payload, header)
    r = clf_server.client.post("/v2/models/churn/infer", content=body, headers=headers)
    assert r.status_code == 400, r.text
    for fragment in fragments:
        assert fragment in r.json()["error"], r.json()["error"]


def test_a_hand_made_binary_request_is_answered(clf_server):
    body, headers = _binary_body(ONE_ROW, ROW_BYTES)
    headers["content-type"] = "application/octet-stream"
    r = clf_server.client.post("/v2/models/churn/infer", content=body, headers=headers)
    assert r.status_code == 200 and "inference-header-content-length" not in r.headers
    frame = pd.DataFrame([{"tenure": 3, "charges": 50.0, "plan": "basic", "promo": True}])
    assert (
        r.json()["outputs"][0]["data"]
        == clf_server.source.load("churn", "1").pipeline.predict(frame).tolist()
    )
