"""The served label follows the decision threshold training recorded (issue 14, item 3).

A rare positive class makes the F1 threshold far below 0.5. The rows sent have a positive-class
probability between the two thresholds, so argmax says "no" and the recorded rule says "yes":
every protocol, both prediction paths, batch and single row must answer "yes".
"""

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from kfops import decision, infra_validate, schema, train
from tests.kfops.serving import factories, triton

MODES = pytest.mark.parametrize("fast_path", [True, False], ids=["fast_path", "sklearn"])


@pytest.fixture(scope="module", params=["logistic", "hist_gradient_boosting"])
def rare(request):
    """(pipeline, schema, rows between the thresholds) for a model with a low threshold."""
    df = factories.frame(n=3000, seed=3)
    rng = np.random.default_rng(3)
    score = -0.08 * df.tenure + 0.03 * df.charges - 2.5 + rng.normal(0, 1.0, len(df))
    df["churned"] = np.where(score > 0.6, "yes", "no")
    spec = schema.Schema(
        (*factories.feature_specs(), schema.ColumnSpec("churned", "string", role="label")),
        label="churned",
        task="classification",
        label_classes=("no", "yes"),
    )
    cfg = train.TrainConfig("churned", estimator=request.param, search_iterations=1, cv_folds=3)
    result = train.train(df, spec, cfg)
    rule = decision.of(result.pipeline)
    assert rule.positive == "yes" and rule.threshold < 0.4, result.decision
    p = result.pipeline.predict_proba(df[spec.feature_names])[:, 1]
    between = df[(p >= rule.threshold + 0.01) & (p < 0.49)]
    assert len(between) >= 8
    return result.pipeline, spec, between.head(8).reset_index(drop=True)


def _info(srv) -> str:
    lines = srv.client.get("/metrics").text.splitlines()
    return next(line for line in lines if line.startswith("kfops_model_info{"))


@MODES
def test_v1_and_v2_json_labels_follow_the_recorded_threshold(serve, rare, fast_path):
    pipeline, spec, rows = rare
    srv = serve(pipeline, spec, log_sample_rate=0, fast_path=fast_path)
    assert f'fast_path="{str(fast_path).lower()}"' in _info(srv)
    instances = factories.instances(rows, len(rows))
    batch = srv.client.post("/v1/models/churn:predict", json={"instances": instances}).json()
    assert batch["predictions"] == ["yes"] * len(rows)
    for one in instances[:3]:
        body = {"instances": [one], "parameters": {"probabilities": True}}
        answer = srv.client.post("/v1/models/churn:predict", json=body).json()
        assert answer["predictions"] == ["yes"] and answer["probabilities"][0][1] < 0.5
    for chunk in (instances, instances[:1]):
        body = {"inputs": factories.v2_inputs(chunk)}
        out = srv.client.post("/v2/models/churn/infer", json=body).json()
        (labels,) = [o["data"] for o in out["outputs"] if o["name"] == "predict"]
        assert labels == ["yes"] * len(chunk)


@MODES
def test_binary_tensors_and_grpc_labels_follow_the_recorded_threshold(serve, rare, fast_path):
    pipeline, spec, rows = rare
    srv = serve(pipeline, spec, log_sample_rate=0, fast_path=fast_path, grpc_port=0)
    assert f'fast_path="{str(fast_path).lower()}"' in _info(srv)
    http = httpclient.InferenceServerClient(srv.url.removeprefix("http://"))
    grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{srv.app.state.grpc_port}")
    for n in (len(rows), 1):
        columns = triton.arrays(rows, 0, n, nulls=False)
        got = http.infer("churn", triton.inputs(httpclient, columns, True)).as_numpy("predict")
        assert [v.decode() for v in got] == ["yes"] * n
        got = grpc.infer("churn", triton.inputs(grpcclient, columns)).as_numpy("predict")
        assert [v.decode() for v in got] == ["yes"] * n


def test_infra_validate_checks_labels_at_the_recorded_threshold(rare):
    pipeline, spec, rows = rare
    report = infra_validate.infra_validate(pipeline, spec, rows.assign(churned="yes"))
    assert report.passed, report.to_dict()
