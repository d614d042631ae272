"""A real server with and without the compiled fast path: /metrics says which; answers agree."""

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from kfops import schema
from tests.kfops.serving import factories

MODES = pytest.mark.parametrize("fast_path", [True, False], ids=["default", "fast_path_off"])
NAMES = {"clf": "churn", "reg": "spend"}


def _config(fast_path: bool) -> dict:
    """The default config (fast path on), or the fast path turned off."""
    return {} if fast_path else {"fast_path": False}


def _model_info(srv) -> str:
    (line,) = [
        line
        for line in srv.client.get("/metrics").text.splitlines()
        if line.startswith("kfops_model_info{")
    ]
    return line


def _rows(df: pd.DataFrame, start: int, n: int) -> list[dict]:
    """JSON rows from the training frame; every third has a null charge (a nullable input)."""
    rows = factories.instances(df, n, start)
    for i, row in enumerate(rows, start):
        if i % 3 == 1:
            row["charges"] = None
    return rows


@MODES
def test_model_info_says_whether_the_fast_path_serves(serve, clf, fast_path):
    srv = serve(*clf[:2], log_sample_rate=0, **_config(fast_path))
    line = _model_info(srv)
    assert 'model="churn"' in line and 'version="1"' in line
    assert f'fast_path="{"true" if fast_path else "false"}"' in line
    assert float(line.rsplit(" ", 1)[1]) == 1


@MODES
@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_v2_infer_answers_as_the_pipeline_does(serve, request, kind, fast_path):
    pipeline, spec, df = request.getfixturevalue(kind)
    srv = serve(pipeline, spec, name=NAMES[kind], log_sample_rate=0, **_config(fast_path))
    # The regressor gets the fast path too, or both modes would be testing sklearn.
    assert f'fast_path="{str(fast_path).lower()}"' in _model_info(srv)
    for rows in [_rows(df, i, 1) for i in range(4)] + [_rows(df, 10, 50)]:
        r = srv.client.post(
            f"/v2/models/{NAMES[kind]}/infer", json={"inputs": factories.v2_inputs(rows)}
        )
        assert r.status_code == 200, r.text
        out = {o["name"]: o for o in r.json()["outputs"]}
        frame = pd.DataFrame(rows, columns=spec.feature_names).astype({"charges": "float64"})
        expected = pipeline.predict(frame)
        if kind == "reg":
            np.testing.assert_allclose(out["predict"]["data"], expected, rtol=1e-9)
            continue
        assert out["predict"]["data"] == expected.tolist()
        assert out["predict_proba"]["shape"] == [len(rows), 2]
        np.testing.assert_allclose(
            np.reshape(out["predict_proba"]["data"], (len(rows), 2)),
            pipeline.predict_proba(frame),
            rtol=1e-9,
        )


@MODES
def test_an_input_the_model_refuses_gets_sklearns_error(serve, fast_path):
    df = factories.frame()
    spec = schema.Schema(factories.feature_specs())
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["tenure", "charges"]),
            ("cat", OneHotEncoder(handle_unknown="error"), ["plan"]),
        ]
    )
    pipeline = Pipeline([("pre", pre), ("est", LogisticRegression())])
    pipeline.fit(df[spec.feature_names], df["churned"])
    # The schema lets the unseen plan through; the encoder is what refuses it.
    srv = serve(pipeline, spec, check_domain=False, log_sample_rate=0, **_config(fast_path))
    assert f'fast_path="{str(fast_path).lower()}"' in _model_info(srv)
    rows = _rows(df, 0, 3)
    rows[2]["plan"] = "platinum"
    r = srv.client.post("/v2/models/churn/infer", json={"inputs": factories.v2_inputs(rows)})
    assert r.status_code == 422, r.text
    assert "platinum" in r.text and "unknown categories" in r.text
    ok = srv.client.post("/v2/models/churn/infer", json={"inputs": factories.v2_inputs(rows[:2])})
    assert ok.status_code == 200, ok.text
    frame = pd.DataFrame(rows[:2], columns=spec.feature_names).astype({"charges": "float64"})
    assert ok.json()["outputs"][0]["data"] == pipeline.predict(frame).tolist()


def _predict_calls(srv) -> float:
    """Requests that went through the micro-batcher's predict calls (kfops_predict_call_*)."""
    for line in srv.client.get("/metrics").text.splitlines():
        if line.startswith("kfops_predict_call_requests_sum"):
            return float(line.split()[1])
    raise AssertionError("kfops_predict_call_requests_sum missing from /metrics")


def test_slow_compiled_models_still_go_through_the_batcher(serve, clf):
    """A nearest-neighbours model's own predict takes milliseconds even on the compiled matrix:
    answering it on the event loop would hold up every other request, so it keeps the
    batcher's worker thread. A linear model is answered inline. (Forests no longer serve here:
    their compiled walk answers 10 rows in ~0.1 ms.)"""
    from sklearn.neighbors import KNeighborsClassifier  # noqa: PLC0415

    pipeline, spec, df = clf
    forest = Pipeline([("pre", pipeline[0]), ("est", KNeighborsClassifier())])
    forest.fit(df[spec.feature_names], df["churned"])
    slow, fast = serve(forest, spec, log_sample_rate=0), serve(pipeline, spec, log_sample_rate=0)
    for srv, model_pipeline in ((slow, forest), (fast, pipeline)):
        rows = factories.instances(df, 3, 10)
        answer = srv.client.post("/v1/models/churn:predict", json={"instances": rows}).json()
        expected = model_pipeline.predict(pd.DataFrame(rows)).tolist()
        assert answer["predictions"] == expected
    assert 'fast_path="true"' in _model_info(slow)
    assert _predict_calls(slow) == 1
    assert _predict_calls(fast) == 0


def _fast_path_counts(srv) -> dict[str, float]:
    """kfops_fast_path_predictions_total by outcome, for model churn."""
    counts = {}
    for line in srv.client.get("/metrics").text.splitlines():
        if line.startswith("kfops_fast_path_predictions_total{") and 'model="churn"' in line:
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            counts[outcome] = float(line.rsplit(" ", 1)[1])
    return counts


@pytest.mark.parametrize("kind", ["linear", "hist_gradient_boosting", "random_forest"])
def test_valid_traffic_is_answered_by_the_fast_path_with_no_fallback(serve, clf, kind):
    """Inline (linear) and batched (trees) models: every valid request counted as fast."""
    pipeline, spec, df = clf if kind == "linear" else factories.trees(kind)
    srv = serve(pipeline, spec, log_sample_rate=0)
    assert _fast_path_counts(srv) == {"fast": 0, "fallback": 0}
    bodies = [_rows(df, i, 1) for i in range(5)] + [_rows(df, 20, 40)]
    for rows in bodies:
        r = srv.client.post("/v2/models/churn/infer", json={"inputs": factories.v2_inputs(rows)})
        assert r.status_code == 200, r.text
    assert _fast_path_counts(srv) == {"fast": len(bodies), "fallback": 0}


def test_a_fast_path_failure_is_answered_by_sklearn_counted_and_logged_once(serve, clf):
    pipeline, spec, df = clf
    srv = serve(pipeline, spec, log_sample_rate=0)
    compiled = srv.app.state.plane.manager.current.model.fast

    def broken(columns, want_proba):
        raise RuntimeError("injected fast-path fault")

    # This instance only (it is frozen): the fault a compiler bug would cause at request time.
    object.__setattr__(compiled, "predict", broken)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("kfops.serving").addHandler(handler)
    try:
        rows = _rows(df, 0, 3)
        r = srv.client.post("/v2/models/churn/infer", json={"inputs": factories.v2_inputs(rows)})
        assert _fast_path_counts(srv) == {"fast": 0, "fallback": 1}
        srv.client.post("/v2/models/churn/infer", json={"inputs": factories.v2_inputs(rows)})
    finally:
        logging.getLogger("kfops.serving").removeHandler(handler)
    assert r.status_code == 200, r.text
    frame = pd.DataFrame(rows, columns=spec.feature_names).astype({"charges": "float64"})
    assert r.json()["outputs"][0]["data"] == pipeline.predict(frame).tolist()
    assert _fast_path_counts(srv) == {"fast": 0, "fallback": 2}
    (logged,) = [rec for rec in records if "fast path failed" in rec.getMessage()]
    assert "injected fast-path fault" in logged.error and logged.exc_info is not None
