"""Derived features through the whole training pipeline (kfp.local via `kfops run`): declared by
--feature and --features-file, trained, evaluated with their importance, registered with a schema
that lists the raw inputs, and served by the fast path with sklearn's answers."""

import json

import numpy as np
import pandas as pd
import pytest

from kfops import cli, datasets, registry, store
from kfops.serving import model as smodel
from kfops.serving import validation

pytestmark = pytest.mark.slow

SOURCE = "builtin:churn?rows=1500&seed=1"


def test_run_with_derived_features_registers_a_model_served_fast(capsys, tmp_path):
    spec_file = tmp_path / "features.yaml"
    spec_file.write_text(
        "signup_month: month(signup_date)\n"
        "age_days: days_since(signup_date, '2026-01-01')\n"
        "tenure_band: {op: bucket, inputs: [tenure_months], edges: [12, 24, 48]}\n",
        encoding="utf-8",
    )
    argv = [
        "run", "--source", SOURCE, "--store", str(tmp_path / "store"),
        "--runs-dir", str(tmp_path / "runs"), "--json",
        "--param", "search_iterations=1", "--param", "cv_folds=2",
        # slice and fairness rules judge a few hundred test rows; the subject is the features
        "--param", "slice_floor=-1", "--param", "max_fairness_gap=-1",
        "--feature", "tenure_per_charge = tenure_months / monthly_charges",
        "--features-file", str(spec_file),
    ]  # fmt: skip
    code = cli.main(argv)
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["status"] == "succeeded", summary
    assert summary["blessed"] is True, summary
    reg = registry.Registry(store.open_store(str(tmp_path / "store")))
    loaded = reg.load("churn")
    derived = ["tenure_per_charge", "signup_month", "age_days", "tenure_band"]
    # the schema served with the model lists what a client sends: raw inputs, never derived ones
    assert "signup_date" in loaded.schema.feature_names
    assert not set(derived) & set(loaded.schema.feature_names)
    assert loaded.pipeline.steps[0][0] == "derive"
    card = open(summary["reports"]["model_card"], encoding="utf-8").read()
    for name in derived:
        assert name in card, name
    # evaluate scored each derived column's permutation importance (kfops.evaluate.explain)
    got = reg.fetch("churn", loaded.version, tmp_path / "files", [registry.METRICS_FILE])
    evaluation = json.loads((got / registry.METRICS_FILE).read_text(encoding="utf-8"))
    rows = {r["feature"]: r for r in evaluation["explanations"]["importance"]["features"]}
    assert all(rows[n]["kind"] == "derived" for n in derived), rows
    served = smodel.with_fast_path(
        smodel.ServedModel("churn", loaded.version, loaded.pipeline, loaded.schema)
    )
    assert served.fast is not None, served.fast_note
    test = datasets.churn(n_rows=300, seed=7)
    columns = {}
    for col in loaded.schema.features:
        values = test[col.name].astype(object).where(test[col.name].notna(), None).tolist()
        columns[col.name] = [v.isoformat() if isinstance(v, pd.Timestamp) else v for v in values]
    arrays = validation.Validator(loaded.schema).validate(columns, len(test)).arrays
    answer = served.predict(arrays, want_proba=True)
    assert answer.path == smodel.FAST
    want = loaded.pipeline.predict_proba(test[loaded.schema.feature_names])
    np.testing.assert_allclose(answer.proba, want, rtol=1e-12, atol=1e-15)
