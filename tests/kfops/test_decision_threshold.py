"""The positive class and a decision threshold chosen on out-of-fold data (issue 14, item 3).

Data: a rare positive class, so the F1-optimal threshold is far below 0.5. The threshold is
chosen without the test split, recorded in the model, reproducible, and used by evaluate.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from kfops import decision, errors, evaluate, schema, train
from kfops.train import threshold


def rare_positive(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """About 9% "yes"; the model's probability of "yes" rarely reaches 0.5."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(2 * x - 3.5)))
    y = np.where(rng.random(n) < p, "yes", "no")
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": y})


def spec(df: pd.DataFrame) -> schema.Schema:
    cols = tuple(
        schema.ColumnSpec(c, schema.dtype_of(df[c]), role="label" if c == "y" else "feature")
        for c in df.columns
    )
    return schema.Schema(cols, label="y", task="classification")


def fit(df: pd.DataFrame, **kw) -> train.TrainResult:
    cfg = {"estimator": "logistic", "search_iterations": 1, "cv_folds": 3, "seed": 0, **kw}
    return train.train(df, spec(df), train.TrainConfig("y", **cfg))


@pytest.fixture(scope="module")
def fitted():
    return fit(rare_positive())


def test_the_f1_threshold_is_far_below_half_and_recorded_in_the_model(fitted):
    rule = fitted.decision
    assert rule["positive_class"] == "yes" and rule["positive_rule"] == decision.LAST_CLASS
    assert rule["objective"] == "f1" and rule["threshold"] < 0.35
    assert rule["validation_rows"] == 1500 and "StratifiedKFold" in rule["validation"]
    assert rule["validation_f1"] > rule["validation_f1_at_default"] + 0.1
    assert decision.of(fitted.pipeline) == decision.Rule("yes", rule["threshold"])
    assert fitted.metadata()["decision"] == rule


def test_the_model_predicts_with_the_recorded_threshold(fitted):
    df = rare_positive(400, seed=1)[["x", "z"]]
    p = fitted.pipeline.predict_proba(df)[:, 1]
    between = (p >= fitted.decision["threshold"]) & (p < 0.5)
    assert between.sum() >= 10
    labels = fitted.pipeline.predict(df)
    assert (labels[between] == "yes").all()
    assert (labels == np.where(p >= fitted.decision["threshold"], "yes", "no")).all()


def test_the_threshold_maximises_f1_on_out_of_fold_probabilities_only():
    # Recomputed here from sklearn's own out-of-fold predictions on the same folds.
    from sklearn import base, model_selection

    df = rare_positive()
    result = fit(df)
    model = base.clone(decision.inner(result.pipeline))
    pipe = base.clone(result.pipeline)
    pipe.steps[-1] = (pipe.steps[-1][0], model)
    folds = model_selection.StratifiedKFold(3, shuffle=True, random_state=0)
    oof = model_selection.cross_val_predict(
        pipe, df[["x", "z"]], df["y"], cv=folds, method="predict_proba"
    )[:, 1]
    actual = df["y"].to_numpy() == "yes"
    best = max(metrics.f1_score(actual, oof >= t) for t in np.unique(oof))
    assert result.decision["validation_f1"] == pytest.approx(best, abs=1e-12)
    t = result.decision["threshold"]
    assert metrics.f1_score(actual, oof >= t) == pytest.approx(best, abs=1e-12)


def test_same_seed_same_threshold():
    df = rare_positive()
    assert fit(df).decision["threshold"] == fit(df).decision["threshold"]


def test_objective_none_keeps_half():
    result = fit(rare_positive(), threshold_objective="none")
    assert result.decision["threshold"] == 0.5
    assert decision.of(result.pipeline) == decision.Rule("yes", 0.5)


def test_positive_class_switches_the_class_the_threshold_is_about():
    result = fit(rare_positive(), positive_class="no")
    assert result.decision["positive_class"] == "no"
    assert result.decision["positive_rule"] == decision.GIVEN
    assert decision.of(result.pipeline).positive == "no"


def test_a_positive_class_not_in_the_label_is_one_line_naming_its_values():
    with pytest.raises(errors.ConfigError) as caught:
        fit(rare_positive(), positive_class="maybe")
    message = str(caught.value)
    assert "'maybe'" in message and "['no', 'yes']" in message and "\n" not in message
    assert errors.ConfigError.exit_code == 2


def test_a_positive_class_for_regression_or_many_classes_is_refused():
    with pytest.raises(errors.ConfigError, match="classification"):
        train.TrainConfig("y", task="regression", positive_class="1")
    df = rare_positive()
    df["y"] = np.array(["a", "b", "c"])[np.arange(len(df)) % 3]
    with pytest.raises(errors.ConfigError, match="binary label"):
        fit(df, positive_class="a")


def test_best_f1_on_a_hand_made_case():
    scores = np.array([0.9, 0.8, 0.3, 0.3, 0.1])
    actual = np.array([True, False, True, True, False])
    t, f1 = threshold.best_f1(scores, actual)
    # keep 0.9, 0.8, 0.3, 0.3 positive: tp 3, predicted 4, actual 3 -> F1 6/7
    assert f1 == pytest.approx(6 / 7) and t == pytest.approx(0.2)


def test_evaluate_measures_thresholded_metrics_at_the_recorded_threshold(fitted):
    test = rare_positive(600, seed=7)
    cfg = evaluate.EvalConfig(label="y", task="classification")
    ev = evaluate.evaluate(fitted.pipeline, test, cfg, baseline=None)
    p = fitted.pipeline.predict_proba(test[["x", "z"]])[:, 1]
    predicted = p >= fitted.decision["threshold"]
    actual = test["y"].to_numpy() == "yes"
    assert ev.metrics["f1"] == pytest.approx(metrics.f1_score(actual, predicted))
    assert ev.metrics["recall"] == pytest.approx(metrics.recall_score(actual, predicted))
    assert ev.metrics["accuracy"] == pytest.approx(np.mean(actual == predicted))
    assert ev.positive_label == "yes"
    assert ev.decision["threshold"] == fitted.decision["threshold"]
    assert ev.decision["positive_rule"] == "recorded in the model by training"


def test_evaluate_scores_the_baseline_on_the_candidates_positive_class():
    from sklearn import dummy

    df = rare_positive()
    result = fit(df, positive_class="no")
    base = dummy.DummyClassifier(strategy="most_frequent").fit(df[["x", "z"]], df["y"])
    ev = evaluate.evaluate(
        result.pipeline, df, evaluate.EvalConfig(label="y", task="classification"), base
    )
    assert ev.positive_label == "no"
    assert ev.baseline_metrics["recall"] == 1.0  # always "no": every "no" found
