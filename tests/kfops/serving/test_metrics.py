"""/metrics: request count and latency per endpoint and status, batch size, predictions, version."""

import re

from tests.kfops.serving import factories


def _value(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{want}}} not exported")


def test_metrics_count_requests_per_endpoint_and_status(serve, clf):
    srv = serve(*clf[:2], log_sample_rate=0)
    rows = factories.instances(clf[2], 5)
    for _ in range(3):
        srv.client.post("/v1/models/churn:predict", json={"instances": rows})
    srv.client.post("/v1/models/churn:predict", json={"instances": []})
    text = srv.client.get("/metrics").text
    assert _value(text, "kfops_requests_total", endpoint="v1_predict", status="200") == 3
    assert _value(text, "kfops_requests_total", endpoint="v1_predict", status="400") == 1
    assert (
        _value(text, "kfops_request_duration_seconds_count", endpoint="v1_predict", status="200")
        == 3
    )
    assert _value(text, "kfops_batch_rows_sum", protocol="v1") == 15


def test_metrics_prediction_distribution_counts_classes(serve, clf):
    pipeline, spec, df = clf
    srv = serve(pipeline, spec, log_sample_rate=0)
    rows = factories.instances(df, 40)
    srv.client.post("/v1/models/churn:predict", json={"instances": rows})
    predicted = pipeline.predict(df[spec.feature_names].iloc[:40])
    text = srv.client.get("/metrics").text
    for cls in (0, 1):
        expected = int((predicted == cls).sum())
        if expected:
            assert (
                _value(text, "kfops_predictions_total", version="1", **{"class": cls}) == expected
            )


def test_metrics_regression_prediction_histogram_counts_rows(serve, reg):
    srv = serve(*reg[:2], name="spend", log_sample_rate=0)
    srv.client.post("/v1/models/spend:predict", json={"instances": factories.instances(reg[2], 12)})
    text = srv.client.get("/metrics").text
    # Buckets span the label's training range (here from -50: no _count/_sum for negative buckets).
    assert (
        _value(text, "kfops_prediction_value_bucket", le="+Inf", model="spend", version="1") == 12
    )


def test_metrics_model_info_follows_the_swap(serve, clf):
    srv = serve(*clf[:2])
    srv.source.add("churn", clf[0], clf[1], "2")
    srv.client.post("/v2/repository/models/churn/load")
    text = srv.client.get("/metrics").text
    assert _value(text, "kfops_model_info", model="churn", version="2") == 1
    assert not re.search(r'kfops_model_info\{model="churn",version="1"\}', text)


def test_metrics_count_inference_log_rows(serve, clf):
    srv = serve(*clf[:2], log_sample_rate=1.0)
    srv.client.post("/v1/models/churn:predict", json={"instances": factories.instances(clf[2], 4)})
    text = srv.client.get("/metrics").text
    assert _value(text, "kfops_inference_log_rows_total", outcome="queued") == 4


def test_both_ways_in_count_answers_and_errors_alike(serve, clf):
    """The raw ASGI inference lane and Starlette routes share one wrapper: errors become JSON
    with their status (and headers), and every answer is counted by endpoint and status."""
    srv = serve(*clf[:2], log_sample_rate=0)
    wrong_method = srv.client.get("/v2/models/churn/infer")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"] == "Method Not Allowed: GET /v2/models/churn/infer"
    assert srv.client.post("/v2/models/nope/infer", json={}).status_code == 404
    assert srv.client.get("/v2/models/nope").status_code == 404
    ok = srv.client.post(
        "/v1/models/churn:predict", json={"instances": factories.instances(clf[2], 1)}
    )
    assert ok.headers["content-type"] == "application/json" and ok.headers["x-request-id"]
    text = srv.client.get("/metrics").text
    assert (
        _value(text, "kfops_requests_total", endpoint="v2_infer", method="GET", status="405") == 1
    )
    assert _value(text, "kfops_requests_total", endpoint="v2_infer", status="404") == 1
    assert _value(text, "kfops_requests_total", endpoint="v2_metadata", status="404") == 1
    assert _value(text, "kfops_requests_total", endpoint="v1_predict", status="200") == 1
