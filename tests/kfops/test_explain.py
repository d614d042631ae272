"""Explanations in evaluation: permutation importance, per-class metrics, worst slices and the
most confidently wrong rows, on real fitted scikit-learn models and data the tests make."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import compose, linear_model, metrics, pipeline, preprocessing, tree

from kfops import evaluate, train
from kfops.evaluate import explain
from kfops.reports import evaluation as report
from kfops.reports import model_card
from kfops.validate import infer


def _frame(n=3000, seed=0, classes=2):
    """`signal` decides the label; `noise` and `colour` are unrelated to it."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "row_id": [f"R{i:05d}" for i in range(n)],
            "signal": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], n),
        }
    )
    edges = np.quantile(df["signal"], np.linspace(0, 1, classes + 1)[1:-1])
    label = np.digitize(df["signal"] + rng.normal(scale=0.3, size=n), edges)
    df["y"] = np.array(["a", "b", "c", "d"])[label] if classes > 2 else label
    return df


def _model(df):
    features = ["signal", "noise", "colour"]
    pre = compose.ColumnTransformer(
        [
            ("num", "passthrough", ["signal", "noise"]),
            ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), ["colour"]),
        ]
    )
    model = pipeline.Pipeline([("pre", pre), ("est", linear_model.LogisticRegression())])
    return model.fit(df[features], df["y"])


@pytest.fixture(scope="module")
def binary():
    df = _frame()
    model = _model(df.iloc[:2000])
    test = df.iloc[2000:].reset_index(drop=True)
    cfg = evaluate.EvalConfig("y", "classification", ("colour",), id_columns=("row_id",))
    return model, test, evaluate.evaluate(model, test, cfg)


@pytest.fixture(scope="module")
def multiclass():
    df = _frame(classes=3, seed=1)
    model = _model(df.iloc[:2000])
    test = df.iloc[2000:].reset_index(drop=True)
    cfg = evaluate.EvalConfig("y", "classification", ("colour",), id_columns=("row_id",))
    return model, test, evaluate.evaluate(model, test, cfg)


def test_importance_ranks_the_informative_feature_above_noise(binary):
    imp = binary[2].explanations["importance"]
    by_name = {r["feature"]: r for r in imp["features"]}
    assert [r["feature"] for r in imp["features"]][0] == "signal"
    assert by_name["signal"]["mean"] > 0.2  # shuffling the signal costs a lot of ROC AUC
    assert abs(by_name["noise"]["mean"]) < 0.02
    assert abs(by_name["colour"]["mean"]) < 0.02
    assert imp["metric"] == "roc_auc" and imp["rows"] == 1000 and imp["of_rows"] == 1000


def test_importance_samples_at_most_explain_rows_and_is_reproducible_across_threads(binary):
    model, test, ev = binary
    scored_cfg = evaluate.EvalConfig("y", "classification", explain_rows=300, n_threads=1)
    one = evaluate.evaluate(model, test, scored_cfg).explanations["importance"]
    two_cfg = evaluate.EvalConfig("y", "classification", explain_rows=300, n_threads=2)
    two = evaluate.evaluate(model, test, two_cfg).explanations["importance"]
    assert one == two
    assert one["rows"] == 300 and one["of_rows"] == len(test)
    assert one != ev.explanations["importance"]  # another sample, another estimate


def test_importance_of_a_derived_feature_is_measured_inside_the_pipeline():
    df = _frame()
    df["signal"], df["half"] = df["signal"] * 0.5, df["signal"] * 0.5  # signal = their sum

    def add_total(x):
        out = x.copy()
        out["total"] = x["signal"] + x["half"]
        return out

    pre = compose.ColumnTransformer([("num", "passthrough", ["total", "noise"])])
    model = pipeline.Pipeline(
        [
            (explain.DERIVED_STEP, preprocessing.FunctionTransformer(add_total)),
            ("pre", pre),
            ("est", linear_model.LogisticRegression()),
        ]
    )
    features = ["signal", "half", "noise"]
    model.fit(df[features].iloc[:2000], df["y"].iloc[:2000])
    test = df.iloc[2000:].reset_index(drop=True)
    ev = evaluate.evaluate(model, test, evaluate.EvalConfig("y", "classification"))
    rows = {r["feature"]: r for r in ev.explanations["importance"]["features"]}
    assert rows["total"]["kind"] == "derived"
    assert rows["total"]["mean"] > 0.2
    assert rows["signal"]["kind"] == "raw" and rows["signal"]["mean"] > 0.05
    assert abs(rows["noise"]["mean"]) < 0.02


def test_per_class_metrics_equal_scikit_learns_classification_report(multiclass):
    model, test, ev = multiclass
    y_pred = model.predict(test[["signal", "noise", "colour"]])
    expected = metrics.classification_report(test["y"], y_pred, output_dict=True, zero_division=0)
    got = ev.explanations["per_class"]
    assert [r["label"] for r in got] == ["a", "b", "c"]
    for row in got:
        want = expected[row["label"]]
        for stat in ("precision", "recall", "f1-score", "support"):
            assert row[stat.replace("-score", "")] == pytest.approx(want[stat], abs=1e-12)


def test_per_class_metrics_for_binary_equal_classification_report(binary):
    model, test, ev = binary
    y_pred = model.predict(test[["signal", "noise", "colour"]])
    expected = metrics.classification_report(test["y"], y_pred, output_dict=True)
    for row in ev.explanations["per_class"]:
        assert row["f1"] == pytest.approx(expected[str(row["label"])]["f1-score"], abs=1e-12)
        assert row["support"] == expected[str(row["label"])]["support"]


def test_confidently_wrong_rows_are_the_highest_confidence_errors(multiclass):
    model, test, ev = multiclass
    proba = model.predict_proba(test[["signal", "noise", "colour"]])
    predicted = model.classes_[proba.argmax(axis=1)]
    wrong = np.flatnonzero(predicted != test["y"].to_numpy())
    top = sorted(wrong, key=lambda i: -proba[i].max())[:10]
    table = ev.explanations["confidently_wrong"]
    assert table["errors"] == len(wrong)
    assert [r["row"] for r in table["rows"]] == [int(i) for i in top]
    least_sure_listed = min(r["probability"] for r in table["rows"])
    unlisted = [proba[i].max() for i in wrong if i not in set(top)]
    assert least_sure_listed >= max(unlisted)
    first = table["rows"][0]
    i = first["row"]
    assert first["row_id"] == test["row_id"][i] and first["y"] == test["y"][i]
    assert first["prediction"] != first["y"] and first["signal"] == test["signal"][i]
    assert table["columns"][:2] == ["row", "row_id"]


def test_confidently_wrong_for_regression_lists_the_largest_errors():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x": rng.normal(size=400), "z": rng.normal(size=400)})
    df["y"] = 3 * df["x"] + rng.normal(size=400)
    model = tree.DecisionTreeRegressor(max_depth=3, random_state=0).fit(df[["x", "z"]], df["y"])
    ev = evaluate.evaluate(model, df, evaluate.EvalConfig("y", "regression"))
    error = np.abs(model.predict(df[["x", "z"]]) - df["y"].to_numpy())
    table = ev.explanations["confidently_wrong"]
    assert [r["row"] for r in table["rows"]] == list(np.argsort(-error)[:10])
    assert table["rows"][0]["absolute error"] == pytest.approx(error.max())
    assert "per_class" not in ev.explanations
    assert ev.explanations["importance"]["metric"] == "r2"
    assert ev.explanations["importance"]["features"][0]["feature"] == "x"


def test_worst_slices_are_ranked_worst_first_by_the_key_metric():
    slices = {
        "g=a": {"rows": 50, "too_small": False, "roc_auc": 0.9, "mae": 1.0},
        "g=b": {"rows": 60, "too_small": False, "roc_auc": 0.6, "mae": 3.0},
        "g=c": {"rows": 5, "too_small": True},
        "g=d": {"rows": 70, "too_small": False, "roc_auc": 0.7, "mae": 2.0},
    }
    worst = explain.worst_slices(slices, "roc_auc")
    assert [(w["slice"], w["rows"]) for w in worst["slices"]] == [
        ("g=b", 60),
        ("g=d", 70),
        ("g=a", 50),
    ]
    # lower is better for an error metric: the largest error is the worst
    assert [w["slice"] for w in explain.worst_slices(slices, "mae")["slices"]][0] == "g=b"


def test_flat_metrics_carry_importance_and_per_class_keys(multiclass):
    flat = evaluate.flat_metrics(multiclass[2])
    for feature in ("signal", "noise", "colour"):
        assert f"importance/{feature}" in flat
    for label in ("a", "b", "c"):
        for stat in ("precision", "recall", "f1", "support"):
            assert f"class/{label}/{stat}" in flat
    assert flat["importance/signal"] > flat["importance/noise"]


def test_explanations_survive_the_json_round_trip_and_can_be_turned_off(binary):
    model, test, ev = binary
    text = json.dumps(ev.to_dict(), allow_nan=False)
    again = evaluate.Evaluation.from_dict(json.loads(text))
    assert again.explanations["importance"] == ev.explanations["importance"]
    off = evaluate.evaluate(model, test, evaluate.EvalConfig("y", "classification", explain=False))
    assert off.explanations == {}
    assert not any(k.startswith(("importance/", "class/")) for k in evaluate.flat_metrics(off))


def test_config_for_takes_id_columns_from_the_schema(binary):
    data_schema = infer.infer_schema(binary[1], label="y", id_columns=["row_id"])
    assert evaluate.config_for(data_schema).id_columns == ("row_id",)


def test_report_and_model_card_show_the_sections(multiclass):
    ev = multiclass[2]
    page = report.evaluation_html(ev)
    for title in (
        "Permutation importance",
        "Per-class metrics",
        "Worst slices by roc_auc",
        "Most confidently wrong test rows",
    ):
        assert title in page, title
    assert "sample of 1000 of 1000 test rows" in page
    data_schema = infer.infer_schema(multiclass[1], label="y", id_columns=["row_id"])
    card = model_card.render(
        "m",
        data_schema,
        ev.to_dict(),
        {"blessed": True, "checks": []},
        {},
    )
    for title in ("## Permutation importance", "## Per-class metrics", "confidently wrong"):
        assert title in card, title


def test_importance_covers_a_derived_feature_of_a_model_kfops_trained():
    """kfops.train with a derived feature (#18): its importance is measured and named derived."""
    rng = np.random.default_rng(4)
    n = 3000
    df = pd.DataFrame(
        {"a": rng.uniform(1, 2, n), "b": rng.uniform(1, 2, n), "z": rng.normal(size=n)}
    )
    df["y"] = (df["a"] / df["b"] + rng.normal(scale=0.05, size=n) > 1.0).astype(int)
    data_schema = infer.infer_schema(df, label="y")
    cfg = train.TrainConfig(
        label="y",
        estimator="logistic",
        search_iterations=1,
        cv_folds=2,
        derived_features=["ratio_ab = a / b"],
    )
    result = train.train(df.iloc[:2000], data_schema, cfg)
    test = df.iloc[2000:].reset_index(drop=True)
    ev = evaluate.evaluate(result.pipeline, test, evaluate.config_for(data_schema))
    rows = {r["feature"]: r for r in ev.explanations["importance"]["features"]}
    assert rows["ratio_ab"]["kind"] == "derived" and rows["ratio_ab"]["mean"] > 0.05
    assert rows["a"]["kind"] == "raw" and rows["a"]["mean"] > 0.05
    assert abs(rows["z"]["mean"]) < 0.02
    assert "importance/ratio_ab" in evaluate.flat_metrics(ev)


def test_accuracy_fallback_labels_with_the_model_s_recorded_threshold(binary):
    """A sample missing a class scores accuracy; a thresholded model's labels are its own rule."""
    from kfops import decision

    model, test, _ = binary
    features = ["signal", "noise", "colour"]
    thresholded = pipeline.Pipeline(list(model.steps))
    decision.wrap(thresholded, decision.Rule(1, 0.9), test[features], test["y"])
    only_ones = test[test["y"] == 1].reset_index(drop=True)
    scored = evaluate.core._score(
        thresholded, only_ones, evaluate.EvalConfig("y", "classification"), 1
    )
    imp = explain.importance(thresholded, only_ones, scored, "classification", "y", features)
    assert imp["metric"] == "accuracy"
    expected = np.mean(thresholded.predict(only_ones[features]) == only_ones["y"])
    assert imp["score"] == pytest.approx(expected)
    argmax = np.mean(model.predict(only_ones[features]) == only_ones["y"])
    assert abs(expected - argmax) > 0.05  # the threshold changes the answer
