"""Schema-valid requests reach the model: every estimator kind, V1, V2 JSON and V2 binary tensors,
every answer a 200 equal to the pipeline's own prediction in this process.

Hypothesis draws rows the schema allows: categories from the domain, integers far outside the
training range, floats from subnormal to 1e300 (and -0.0), nulls where the column is nullable,
1 to 64 rows. Where scikit-learn itself refuses a value the schema allows (tree models cast to
float32, so |x| > 3.4e38 is "too large"), the server must refuse it the same way: 422.
"""

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tritonclient import http as httpclient
from tritonclient.utils import InferenceServerException

from kfops.serving import app, model, server
from kfops.serving import settings as serve_settings
from tests.kfops.serving import agreement, factories

# scikit-learn warns on the extreme values while it computes the expected answers in-process.
pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered:RuntimeWarning", "ignore:invalid value encountered:RuntimeWarning"
)
MAX_ROWS = 64
TYPES = {"tenure": "INT64", "charges": "FP64", "plan": "BYTES", "promo": "BOOL"}
KINDS = {
    "logistic": factories.classifier,
    "linear": factories.regressor,
    "hist_gradient_boosting": lambda: factories.trees("hist_gradient_boosting"),
    "random_forest": lambda: factories.trees("random_forest"),
    "hist_gradient_boosting_regressor": lambda: factories.trees(
        "hist_gradient_boosting", task="regression"
    ),
    "random_forest_regressor": lambda: factories.trees("random_forest", task="regression"),
}
_charges = (
    st.none()
    | st.sampled_from([0.0, -0.0, 5e-324, -1e300, 1e300, 20.0, 120.0])
    | st.floats(-1e12, 1e12, allow_nan=False)
)
_row = st.fixed_dictionaries(
    {
        "tenure": st.integers(-(2**53), 2**53) | st.sampled_from([0, 72, -1, 73]),
        "charges": _charges,
        "plan": st.sampled_from(factories.PLANS),
        "promo": st.booleans(),
    }
)
_rows = st.lists(_row, min_size=1, max_size=MAX_ROWS)


@pytest.fixture(scope="module")
def servers():
    """One real server per estimator kind, with the fast path (the default) where it applies."""
    running = {}
    stack = []
    for kind, make in KINDS.items():
        pipeline, spec, _ = make()
        source = model.MemorySource()
        source.add("m", pipeline, spec, "1")
        cfg = serve_settings.ServeConfig(
            name="m", poll_seconds=0, log_sample_rate=0, max_batch_rows=MAX_ROWS
        )
        ctx = server.running(app.build_app(cfg, source, None))
        url = ctx.__enter__()
        client = httpx.Client(base_url=url, timeout=30)
        triton = httpclient.InferenceServerClient(url.removeprefix("http://"))
        stack.append((ctx, client, triton))
        running[kind] = (client, triton, pipeline)
    yield running
    for ctx, client, triton in reversed(stack):
        client.close()
        triton.close()
        ctx.__exit__(None, None, None)


def _columns(rows: list[dict]) -> dict[str, np.ndarray]:
    """The rows as typed columns (null charges as NaN): the in-process frame, the binary tensors."""
    return {
        "tenure": np.array([r["tenure"] for r in rows], dtype=np.int64),
        "charges": np.array(
            [np.nan if r["charges"] is None else r["charges"] for r in rows], dtype=np.float64
        ),
        "plan": np.array([r["plan"] for r in rows], dtype=object),
        "promo": np.array([r["promo"] for r in rows], dtype=bool),
    }


def _binary(triton, rows: list[dict]):
    """The rows as a V2 request with binary tensors (tritonclient's default encoding)."""
    inputs = []
    for name, arr in _columns(rows).items():
        tensor = httpclient.InferInput(name, [len(arr)], TYPES[name])
        tensor.set_data_from_numpy(arr)
        inputs.append(tensor)
    return triton.infer("m", inputs)


def _expected(pipeline, rows: list[dict]):
    frame = pd.DataFrame(_columns(rows))
    proba = pipeline.predict_proba(frame) if hasattr(pipeline, "predict_proba") else None
    return pipeline.predict(frame), proba


@pytest.mark.parametrize("kind", list(KINDS))
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=_rows)
def test_schema_valid_requests_are_answered_as_the_pipeline_does(servers, kind, rows):
    client, triton, pipeline = servers[kind]
    try:
        labels, proba = _expected(pipeline, rows)
    except ValueError as e:  # trees cast to float32: sklearn refuses |x| > 3.4e38
        assert "too large" in str(e)
        _assert_refused(client, triton, rows)
        return
    v1 = client.post(
        "/v1/models/m:predict",
        json={"instances": rows, "parameters": {"probabilities": proba is not None}},
    )
    assert v1.status_code == 200, v1.text
    got = v1.json()
    got_proba = np.asarray(got["probabilities"]) if proba is not None else None
    agreement.assert_same((got["predictions"], got_proba), (labels, proba))
    v2 = client.post("/v2/models/m/infer", json={"inputs": factories.v2_inputs(rows)})
    assert v2.status_code == 200, v2.text
    out = {o["name"]: o for o in v2.json()["outputs"]}
    got_proba = np.reshape(out["predict_proba"]["data"], proba.shape) if proba is not None else None
    agreement.assert_same((out["predict"]["data"], got_proba), (labels, proba))
    binary = _binary(triton, rows)
    got_proba = binary.as_numpy("predict_proba") if proba is not None else None
    agreement.assert_same((binary.as_numpy("predict"), got_proba), (labels, proba))


def _assert_refused(client, triton, rows: list[dict]) -> None:
    """What scikit-learn refuses the server refuses too: 422 with its reason, every encoding."""
    v1 = client.post("/v1/models/m:predict", json={"instances": rows})
    v2 = client.post("/v2/models/m/infer", json={"inputs": factories.v2_inputs(rows)})
    for answer in (v1, v2):
        assert answer.status_code == 422, answer.text
        assert "too large" in answer.json()["error"]
    with pytest.raises(InferenceServerException) as refused:
        _binary(triton, rows)
    assert refused.value.status() == "422" and "too large" in refused.value.message()
