"""Every reported metric equals scikit-learn's own function on the same predictions (issue 15.6).

Non-trivial data: overlapping classes (no metric is 0 or 1), string labels, an uneven class
balance, and a regression with noise, so a swapped argument, a wrong average or a wrong positive
class changes the value.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from kfops import evaluate


def _frame(n: int, classes: list[str] | None, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    df = pd.DataFrame(x, columns=["a", "b", "c"])
    signal = x @ np.array([1.0, -0.7, 0.3])
    if classes is None:
        df["y"] = 3.0 * signal + rng.normal(0, 2.0, n) + 10
        return df
    noisy = signal + rng.normal(0, 1.2, n)
    cuts = np.quantile(noisy, np.linspace(0, 1, len(classes) + 1)[1:-1] * 0.8 + 0.15)
    df["y"] = np.asarray(classes, dtype=object)[np.searchsorted(cuts, noisy)]
    return df


def _fit(model, df):
    return model.fit(df[["a", "b", "c"]], df["y"])


def test_binary_metrics_equal_scikit_learn():
    train, test = _frame(600, ["no", "yes"], 1), _frame(500, ["no", "yes"], 2)
    model = _fit(LogisticRegression(), train)
    result = evaluate.evaluate(model, test, evaluate.EvalConfig(label="y", task="classification"))
    assert result.positive_label == "yes"
    x, y = test[["a", "b", "c"]], test["y"].to_numpy()
    proba = model.predict_proba(x)
    p_yes = proba[:, list(model.classes_).index("yes")]
    pred = model.predict(x)
    oracle = {
        "accuracy": sk.accuracy_score(y, pred),
        "precision": sk.precision_score(y, pred, pos_label="yes"),
        "recall": sk.recall_score(y, pred, pos_label="yes"),
        "f1": sk.f1_score(y, pred, pos_label="yes"),
        "roc_auc": sk.roc_auc_score(y == "yes", p_yes),
        "pr_auc": sk.average_precision_score(y, p_yes, pos_label="yes"),
        "log_loss": sk.log_loss(y, proba, labels=model.classes_),
        "brier": sk.brier_score_loss(y, p_yes, pos_label="yes"),
    }
    _same(result.metrics, oracle)
    # Not a degenerate problem: every metric is strictly inside its range.
    assert 0.6 < oracle["roc_auc"] < 0.95 and 0.2 < oracle["log_loss"] < 0.7
    assert oracle["precision"] != oracle["recall"]


def test_binary_metrics_for_the_other_positive_class_equal_scikit_learn():
    train, test = _frame(600, ["no", "yes"], 3), _frame(400, ["no", "yes"], 4)
    model = _fit(LogisticRegression(), train)
    cfg = evaluate.EvalConfig(label="y", task="classification", positive_label="no")
    result = evaluate.evaluate(model, test, cfg)
    x, y = test[["a", "b", "c"]], test["y"].to_numpy()
    p_no = model.predict_proba(x)[:, list(model.classes_).index("no")]
    pred = model.predict(x)
    oracle = {
        "precision": sk.precision_score(y, pred, pos_label="no"),
        "recall": sk.recall_score(y, pred, pos_label="no"),
        "f1": sk.f1_score(y, pred, pos_label="no"),
        "roc_auc": sk.roc_auc_score(y == "no", p_no),
        "pr_auc": sk.average_precision_score(y, p_no, pos_label="no"),
        "brier": sk.brier_score_loss(y, p_no, pos_label="no"),
    }
    _same({k: result.metrics[k] for k in oracle}, oracle)


def test_multiclass_metrics_equal_scikit_learn():
    classes = ["bronze", "gold", "silver"]
    train, test = _frame(900, classes, 5), _frame(600, classes, 6)
    model = _fit(LogisticRegression(max_iter=500), train)
    result = evaluate.evaluate(model, test, evaluate.EvalConfig(label="y", task="classification"))
    x, y = test[["a", "b", "c"]], test["y"].to_numpy()
    proba, pred, labels = model.predict_proba(x), model.predict(x), list(model.classes_)
    onehot = np.stack([y == c for c in labels], axis=1)
    oracle = {
        "accuracy": sk.accuracy_score(y, pred),
        "precision": sk.precision_score(y, pred, average="macro"),
        "recall": sk.recall_score(y, pred, average="macro"),
        "f1": sk.f1_score(y, pred, average="macro"),
        "roc_auc": sk.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels),
        "pr_auc": sk.average_precision_score(onehot, proba, average="macro"),
        "log_loss": sk.log_loss(y, proba, labels=labels),
    }
    _same(result.metrics, oracle)
    assert 0.6 < oracle["roc_auc"] < 0.95
    # Macro, not weighted or one-vs-one: those differ on these uneven classes.
    assert abs(oracle["f1"] - sk.f1_score(y, pred, average="weighted")) > 1e-3
    ovo = sk.roc_auc_score(y, proba, multi_class="ovo", average="macro", labels=labels)
    assert abs(oracle["roc_auc"] - ovo) > 1e-4


def test_regression_metrics_equal_scikit_learn():
    train, test = _frame(500, None, 7), _frame(300, None, 8)
    model = _fit(LinearRegression(), train)
    result = evaluate.evaluate(model, test, evaluate.EvalConfig(label="y", task="regression"))
    y, pred = test["y"].to_numpy(), model.predict(test[["a", "b", "c"]])
    oracle = {
        "mae": sk.mean_absolute_error(y, pred),
        "rmse": sk.root_mean_squared_error(y, pred),
        "r2": sk.r2_score(y, pred),
    }
    _same(result.metrics, oracle)
    assert 0.3 < oracle["r2"] < 0.95


def test_baseline_metrics_equal_scikit_learn():
    train, test = _frame(600, ["no", "yes"], 9), _frame(400, ["no", "yes"], 10)
    model, base = _fit(LogisticRegression(), train), _fit(DummyClassifier(strategy="prior"), train)
    cfg = evaluate.EvalConfig(label="y", task="classification")
    result = evaluate.evaluate(model, test, cfg, baseline=base)
    y, x = test["y"].to_numpy(), test[["a", "b", "c"]]
    proba = base.predict_proba(x)
    assert result.baseline_metrics["log_loss"] == pytest.approx(
        sk.log_loss(y, proba, labels=base.classes_), rel=1e-12
    )
    assert result.baseline_metrics["roc_auc"] == pytest.approx(0.5)
    assert result.baseline_metrics["brier"] == pytest.approx(
        sk.brier_score_loss(y, proba[:, 1], pos_label="yes"), rel=1e-12
    )


def _same(reported: dict, oracle: dict) -> None:
    assert set(reported) == set(oracle), "a reported metric has no oracle (or one is missing)"
    for name, value in oracle.items():
        assert reported[name] == pytest.approx(float(value), rel=1e-9, abs=1e-12), name
