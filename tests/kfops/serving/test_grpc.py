"""The V2 gRPC endpoint, spoken to by the official client (tritonclient.grpc) and a raw channel."""

import io

import grpc
import numpy as np
import pyarrow.parquet as pq
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from kfops import logschema
from kfops.serving import grpc_server
from tests.kfops.serving import factories, triton


def _client(srv) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{srv.app.state.grpc_port}")


@pytest.mark.parametrize("kind", ["linear", "hist_gradient_boosting", "regression"])
def test_model_infer_answers_as_the_model_does_in_process(serve, clf, reg, kind):
    pipeline, spec, df = {"linear": clf, "regression": reg}.get(kind) or factories.trees(kind)
    name = "spend" if kind == "regression" else "churn"
    srv = serve(pipeline, spec, name=name, log_sample_rate=0, grpc_port=0)
    client = _client(srv)
    for start, n in ((0, 1), (5, 3), (10, 60)):
        columns = triton.arrays(df, start, n, nulls=True)
        result = client.infer(name, triton.inputs(grpcclient, columns))  # raw_input_contents
        assert len(result.get_response().raw_output_contents) == len(result.get_response().outputs)
        triton.assert_answers(result, pipeline, columns)


def test_health_and_metadata_rpcs(serve, clf):
    srv = serve(*clf[:2], log_sample_rate=0, grpc_port=0)
    client = _client(srv)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("churn") and client.is_model_ready("churn", "1")
    meta = client.get_server_metadata(as_json=True)
    assert meta["name"] == "kfops" and "model_repository" in meta["extensions"]
    model = client.get_model_metadata("churn", as_json=True)
    assert model["versions"] == ["1"] and model["platform"] == "sklearn"
    assert {i["name"]: i["datatype"] for i in model["inputs"]} == {
        "tenure": "INT64",
        "charges": "FP64",
        "plan": "BYTES",
        "promo": "BOOL",
    }
    assert [o["name"] for o in model["outputs"]] == ["predict", "predict_proba"]


def test_errors_are_grpc_status_codes_naming_the_problem(serve, clf):
    srv = serve(*clf[:2], log_sample_rate=0, grpc_port=0)
    client = _client(srv)
    columns = triton.arrays(clf[2], 0, 3, nulls=False)
    columns["plan"] = np.array(["basic", "platinum", "pro"], dtype=object)
    with pytest.raises(InferenceServerException) as bad:
        client.infer("churn", triton.inputs(grpcclient, columns))
    assert bad.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "field 'plan'" in bad.value.message() and "platinum" in bad.value.message()
    with pytest.raises(InferenceServerException) as missing:
        client.is_model_ready("nope")
    assert missing.value.status() == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException) as version:
        client.get_model_metadata("churn", "7")
    assert version.value.status() == "StatusCode.NOT_FOUND" and "'7'" in version.value.message()
    text = srv.client.get("/metrics").text
    assert 'endpoint="grpc_model_infer",method="grpc",status="INVALID_ARGUMENT"} 1.0' in text
    assert 'endpoint="grpc_model_ready",method="grpc",status="NOT_FOUND"} 1.0' in text


def test_typed_contents_without_raw_bytes_are_answered(serve, clf):
    """InferTensorContents (not raw_input_contents), through a raw channel and our messages."""
    pipeline, spec, df = clf
    srv = serve(pipeline, spec, log_sample_rate=0, grpc_port=0)
    columns = triton.arrays(df, 30, 4, nulls=True)
    request = grpc_server.message("ModelInferRequest")(model_name="churn", id="typed-1")
    fields = {"tenure": "int64_contents", "charges": "fp32_contents", "promo": "bool_contents"}
    for name, arr in columns.items():
        tensor = request.inputs.add(name=name, datatype=triton.DTYPES[name], shape=[len(arr)])
        if name == "plan":
            tensor.contents.bytes_contents.extend(v.encode() for v in arr)
        else:
            getattr(tensor.contents, fields[name]).extend(arr.tolist())
    request.outputs.add(name="predict")
    with grpc.insecure_channel(f"127.0.0.1:{srv.app.state.grpc_port}") as channel:
        infer = channel.unary_unary(
            f"/{grpc_server.SERVICE}/ModelInfer",
            request_serializer=type(request).SerializeToString,
            response_deserializer=grpc_server.message("ModelInferResponse").FromString,
        )
        response = infer(request)
    assert response.id == "typed-1" and [o.name for o in response.outputs] == ["predict"]
    labels, _ = triton.expected(pipeline, columns)
    assert np.frombuffer(response.raw_output_contents[0], "<i8").tolist() == labels.tolist()


def test_grpc_requests_are_counted_and_logged_like_rest(serve, clf):
    srv = serve(*clf[:2], log_sample_rate=1.0, grpc_port=0)
    columns = triton.arrays(clf[2], 0, 5, nulls=False)
    _client(srv).infer("churn", triton.inputs(grpcclient, columns), request_id="from-grpc")
    srv.stop()  # flushes the inference log
    keys = list(srv.store.list(logschema.log_prefix("churn")))
    logs = pq.read_table(io.BytesIO(srv.store.get_bytes(keys[0]))).to_pandas()
    assert logs[logschema.REQUEST_ID].tolist() == ["from-grpc"] * 5
