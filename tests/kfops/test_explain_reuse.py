"""Permutation importance of a tree model predicts only the rows a shuffle changed: same numbers."""

import numpy as np
import pandas as pd
import pytest
from sklearn import compose, ensemble, linear_model, pipeline, preprocessing
from sklearn.model_selection import FixedThresholdClassifier

from kfops import evaluate
from kfops.evaluate import explain


def _frame(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "signal": rng.normal(size=n),
            "level": rng.integers(0, 4, n),  # few values: a shuffle leaves many rows as they were
            "colour": rng.choice(["red", "green", "blue"], n).astype(object),
            "flag": rng.random(n) < 0.5,
        }
    )
    df.loc[rng.random(n) < 0.1, "colour"] = None  # missing values count as changed
    df["y"] = (df["signal"] + 0.5 * df["level"] + rng.normal(scale=0.5, size=n) > 1).astype(int)
    df["target"] = df["signal"] * 2 + df["level"] + rng.normal(scale=0.3, size=n)
    return df


def _pipe(est):
    pre = compose.ColumnTransformer(
        [
            ("num", "passthrough", ["signal", "level", "flag"]),
            ("cat", preprocessing.OrdinalEncoder(handle_unknown="use_encoded_value",
                                                 unknown_value=-1, encoded_missing_value=-2),
             ["colour"]),
        ]
    )  # fmt: skip
    return pipeline.Pipeline([("pre", pre), ("est", est)])


CASES = {
    "hgb_threshold": ("y", "classification", lambda: FixedThresholdClassifier(
        ensemble.HistGradientBoostingClassifier(max_iter=30, random_state=0),
        threshold=0.3, pos_label=1)),
    "forest": ("y", "classification",
               lambda: ensemble.RandomForestClassifier(n_estimators=20, random_state=0)),
    "hgb_regressor": ("target", "regression",
                      lambda: ensemble.HistGradientBoostingRegressor(max_iter=30, random_state=0)),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_importance_equals_predicting_every_row(monkeypatch, case):
    label, task, make = CASES[case]
    df = _frame()
    features = ["signal", "level", "colour", "flag"]
    model = _pipe(make()).fit(df[features].iloc[:1000], df[label].iloc[:1000])
    test = df.iloc[1000:].reset_index(drop=True)
    cfg = evaluate.EvalConfig(label, task, explain_rows=400)
    assert explain._row_exact(model)
    reused = evaluate.evaluate(model, test, cfg).explanations["importance"]
    predicted = []
    real = explain._Scorer.outputs

    def counting(self, m, x):
        predicted.append(len(x))
        return real(self, m, x)

    monkeypatch.setattr(explain._Scorer, "outputs", counting)
    monkeypatch.setattr(explain, "_row_exact", lambda model: False)
    every = evaluate.evaluate(model, test, cfg).explanations["importance"]
    assert reused == every  # bit for bit: means, stds and the score
    assert predicted == []  # the whole-sample path does not use the partial one
    monkeypatch.setattr(explain, "_row_exact", lambda model: True)
    again = evaluate.evaluate(model, test, cfg).explanations["importance"]
    assert again == every
    # the sample's outputs come from the step's one prediction; unchanged rows are not predicted
    assert predicted and max(predicted) < 400


def test_a_linear_model_is_not_row_exact():
    assert not explain._row_exact(_pipe(linear_model.LogisticRegression()))
