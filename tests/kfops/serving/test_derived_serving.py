"""A model with derived features behind a real server: clients send raw inputs only, the fast
path answers as scikit-learn does (no fallback), and a derived column sent as input is a 400."""

import numpy as np
import pytest

from kfops import datasets, features, parameters
from kfops.train import core
from kfops.validate import infer

SPECS = [
    "tenure_per_charge = tenure_months / monthly_charges",
    "signup_month = month(signup_date)",
    "signup_weekday = weekday(signup_date)",
    "age_days = days_since(signup_date, '2026-01-01')",
    "tenure_band = bucket(tenure_months, [12, 24, 48])",
    "is_premium = contains(plan, 'prem')",
]


@pytest.fixture(scope="module")
def derived_model():
    df = datasets.churn().iloc[:800].reset_index(drop=True)
    sch = infer.infer_schema(df, label="churned")
    cfg = parameters.build(
        core.TrainConfig,
        label="churned",
        task="classification",
        search_iterations=1,
        cv_folds=2,
        derived_features=SPECS,
    )
    result = core.train(df.iloc[:600], sch, cfg)
    return result, features.model_schema(sch, result.derived_features), df.iloc[600:]


def _instances(spec, frame):
    rows = []
    for record in frame.to_dict("records"):
        row = {}
        for col in spec.features:
            v = record[col.name]
            if hasattr(v, "isoformat"):
                v = v.isoformat()
            elif hasattr(v, "item"):
                v = v.item()
            row[col.name] = None if isinstance(v, float) and v != v else v
        rows.append(row)
    return rows


def _counter(text: str, outcome: str) -> float:
    for line in text.splitlines():
        if line.startswith("kfops_fast_path_predictions_total{") and f'outcome="{outcome}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_served_with_raw_inputs_answers_as_sklearn_with_no_fallback(serve, derived_model):
    result, spec, test = derived_model
    running = serve(result.pipeline, spec)
    meta = running.client.get("/v2/models/churn").json()
    names = [i["name"] for i in meta["inputs"]]
    assert "signup_date" in names and names == spec.feature_names
    assert not set(names) & {f.split(" =")[0] for f in SPECS}
    rows = _instances(spec, test)
    want = result.pipeline.predict_proba(test)
    body = {"instances": rows, "parameters": {"probabilities": True}}
    got = running.client.post("/v1/models/churn:predict", json=body)
    assert got.status_code == 200, got.text
    proba = np.array(got.json()["probabilities"])
    np.testing.assert_allclose(proba, want, rtol=1e-12, atol=1e-15)
    for i in range(0, len(rows), 50):  # single rows take the compiled row form
        one = running.client.post(
            "/v1/models/churn:predict",
            json={"instances": [rows[i]], "parameters": {"probabilities": True}},
        )
        assert one.status_code == 200, one.text
        got_one = np.array(one.json()["probabilities"][0])
        np.testing.assert_allclose(got_one, want[i], rtol=1e-12, atol=1e-15)
    metrics = running.client.get("/metrics").text
    assert _counter(metrics, "fast") >= 1 + len(range(0, len(rows), 50))
    assert _counter(metrics, "fallback") == 0


def test_a_derived_column_instead_of_its_input_is_a_400_naming_it(serve, derived_model):
    result, spec, test = derived_model
    running = serve(result.pipeline, spec)
    row = _instances(spec, test.iloc[:1])[0]
    row.pop("monthly_charges")
    row["tenure_per_charge"] = 1.5
    answer = running.client.post("/v1/models/churn:predict", json={"instances": [row]})
    assert answer.status_code == 400
    text = answer.text
    assert "tenure_per_charge" in text and "derived feature" in text
    assert "monthly_charges" in text
