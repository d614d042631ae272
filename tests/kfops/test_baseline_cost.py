"""The Dummy baseline reads no feature values: it keeps the model's inputs but encodes none."""

import numpy as np
import pandas as pd
import pytest

from kfops import errors, evaluate, schema, train


def _frame(n=200, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "spend": rng.normal(50, 10, n),
            "plan": rng.choice(["basic", "pro", None], n),
            "y": rng.choice([0, 1], n, p=[0.7, 0.3]),
        }
    )


def _schema(df):
    cols = tuple(
        schema.ColumnSpec(c, schema.dtype_of(df[c]), role="label" if c == "y" else "feature")
        for c in df.columns
    )
    return schema.Schema(cols, label="y")


@pytest.fixture(scope="module")
def result():
    df = _frame()
    cfg = train.TrainConfig(label="y", search_iterations=1, cv_folds=2)
    return df, train.train(df, _schema(df), cfg)


def test_the_baseline_transforms_no_column_and_predicts_the_prior(result):
    df, trained = result
    # the preprocessing hands the Dummy zero columns: no per-row encoding at fit or predict
    assert trained.baseline[0].transform(df).shape == (len(df), 0)
    assert list(trained.baseline.feature_names_in_) == ["spend", "plan"]
    unseen = df.assign(plan="never seen", spend=np.nan)
    proba = trained.baseline.predict_proba(unseen)[:, 1]
    assert proba == pytest.approx(np.full(len(df), df["y"].mean()))


def test_evaluate_still_needs_the_models_columns_for_the_baseline(result):
    df, trained = result
    cfg = evaluate.EvalConfig(label="y", task="classification", explain=False)
    ev = evaluate.evaluate(trained.pipeline, df, cfg, baseline=trained.baseline)
    assert ev.baseline_metrics["roc_auc"] == pytest.approx(0.5)
    with pytest.raises(errors.SchemaViolation, match="plan"):
        evaluate.evaluate(trained.baseline, df.drop(columns="plan"), cfg)
