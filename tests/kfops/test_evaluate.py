import json

import numpy as np
import pandas as pd
import pytest
from sklearn import dummy, tree

from kfops import errors, evaluate
from tests.kfops.fixed_models import Regressor, Rule


class Broken:
    classes_ = np.array([0, 1])

    def predict_proba(self, x):
        raise ValueError("input has 3 features, expected 4")


def _cfg(**kw):
    return evaluate.EvalConfig(**{"label": "y", "task": "classification", **kw})


def _separable(n=200):
    x = np.arange(n, dtype=float)
    return pd.DataFrame({"x": x, "y": (x >= n / 2).astype(int)})


def _regions(n_per=40):
    # north: the model is always right; south: always wrong.
    y = np.tile([0, 1], n_per)
    df = pd.DataFrame(
        {"region": ["north"] * (2 * n_per) + ["south"] * (2 * n_per), "y": np.r_[y, y]}
    )
    df["score"] = np.where(df["region"] == "north", df["y"] * 0.8 + 0.1, 0.9 - df["y"] * 0.8)
    return df


def test_eval_config_rejects_unknown_task():
    with pytest.raises(errors.ConfigError, match="task"):
        evaluate.EvalConfig("y", "ranking")


def test_eval_config_rejects_a_single_string_as_slice_columns():
    with pytest.raises(errors.ConfigError, match="list of names"):
        evaluate.EvalConfig("y", "classification", slice_columns="region")


def test_eval_config_rejects_the_label_as_a_slice():
    with pytest.raises(errors.ConfigError, match="cannot be a slice"):
        evaluate.EvalConfig("y", "classification", slice_columns=["y"])


def test_eval_config_rejects_min_slice_rows_below_one():
    with pytest.raises(errors.ConfigError, match="min_slice_rows"):
        evaluate.EvalConfig("y", "classification", min_slice_rows=0)


def test_evaluate_perfectly_separable_frame_scores_one():
    df = _separable()
    model = tree.DecisionTreeClassifier(random_state=0).fit(df[["x"]], df["y"])
    ev = evaluate.evaluate(model, df, _cfg())
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"):
        assert ev.metrics[name] == pytest.approx(1.0), name
    assert ev.n_rows == 200
    assert ev.labels == [0, 1] and ev.positive_label == 1


def test_evaluate_binary_metrics_match_a_hand_count():
    # predictions [1, 0, 1, 0] for truth [1, 1, 0, 0]: TP=1 FN=1 FP=1 TN=1
    df = pd.DataFrame({"y": [1, 1, 0, 0], "score": [0.9, 0.2, 0.7, 0.1]})
    ev = evaluate.evaluate(Rule(), df, _cfg())
    assert ev.metrics["accuracy"] == 0.5
    assert ev.metrics["precision"] == 0.5
    assert ev.metrics["recall"] == 0.5
    assert ev.metrics["roc_auc"] == 0.75
    assert ev.metrics["brier"] == pytest.approx((0.01 + 0.64 + 0.49 + 0.01) / 4)


def test_evaluate_positive_label_switches_which_class_recall_is_about():
    df = pd.DataFrame({"y": ["yes", "yes", "no", "no"], "score": [0.9, 0.9, 0.8, 0.1]})
    model = Rule(classes=("no", "yes"))
    assert evaluate.evaluate(model, df, _cfg()).metrics["recall"] == 1.0
    assert evaluate.evaluate(model, df, _cfg(positive_label="no")).metrics["recall"] == 0.5


def test_evaluate_positive_label_given_as_text_matches_an_integer_class():
    df = pd.DataFrame({"y": [1, 0], "score": [0.9, 0.1]})
    assert evaluate.evaluate(Rule(), df, _cfg(positive_label="0")).positive_label == 0


def test_evaluate_rejects_a_positive_label_the_model_does_not_know():
    df = pd.DataFrame({"y": [1, 0], "score": [0.9, 0.1]})
    with pytest.raises(errors.ConfigError, match="positive_label 'maybe'"):
        evaluate.evaluate(Rule(), df, _cfg(positive_label="maybe"))


def test_evaluate_multiclass_reports_macro_averages():
    x = np.repeat([0.0, 1.0, 2.0], 30)
    df = pd.DataFrame({"x": x, "y": np.array(["a", "b", "c"])[x.astype(int)]})
    model = tree.DecisionTreeClassifier(random_state=0).fit(df[["x"]], df["y"])
    ev = evaluate.evaluate(model, df.assign(y=np.where(np.arange(90) == 0, "b", df["y"])), _cfg())
    assert ev.metrics["accuracy"] == pytest.approx(89 / 90)
    # row 0 is now truly "b" but predicted "a": recall a 29/29, b 30/31, c 30/30 -> macro mean
    assert ev.metrics["recall"] == pytest.approx((1 + 30 / 31 + 1) / 3)
    assert ev.metrics["roc_auc"] is not None
    assert "brier" not in ev.metrics
    assert ev.curves["roc"]["average"] == "micro-average over classes"


def test_evaluate_marks_roc_auc_undefined_when_the_test_rows_hold_one_class():
    df = pd.DataFrame({"y": [1, 1, 1], "score": [0.9, 0.8, 0.4]})
    ev = evaluate.evaluate(Rule(), df, _cfg())
    assert ev.metrics["roc_auc"] is None
    assert any("roc_auc" in note and "undefined" in note for note in ev.notes)


def test_evaluate_regression_metrics_match_a_hand_count():
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "guess": [1.0, 2.0, 3.0, 8.0]})
    ev = evaluate.evaluate(Regressor(), df, _cfg(task="regression"))
    assert ev.metrics["mae"] == 1.0
    assert ev.metrics["rmse"] == 2.0
    assert ev.metrics["r2"] == pytest.approx(1 - 16 / 5)
    assert ev.labels is None and ev.positive_label is None


def test_evaluate_regression_r2_is_null_for_a_constant_label():
    df = pd.DataFrame({"y": [2.0, 2.0, 2.0], "guess": [1.0, 2.0, 3.0]})
    assert evaluate.evaluate(Regressor(), df, _cfg(task="regression")).metrics["r2"] is None


def test_evaluate_turns_non_finite_values_into_null_and_says_which():
    df = pd.DataFrame({"y": [1.0, 2.0], "guess": [1.0, np.inf]})
    ev = evaluate.evaluate(Regressor(), df, _cfg(task="regression"))
    assert ev.metrics["mae"] is None
    assert any(note.startswith("mae was inf") for note in ev.notes)
    json.dumps(ev.to_dict(), allow_nan=False)


def test_evaluate_measures_the_baseline_on_the_same_rows():
    df = _separable()
    model = tree.DecisionTreeClassifier(random_state=0).fit(df[["x"]], df["y"])
    base = dummy.DummyClassifier(strategy="prior").fit(df[["x"]], df["y"])
    ev = evaluate.evaluate(model, df, _cfg(), baseline=base)
    assert ev.baseline_metrics["roc_auc"] == 0.5
    assert ev.baseline_metrics["accuracy"] == 0.5


def test_evaluate_without_baseline_has_no_baseline_metrics():
    assert evaluate.evaluate(Rule(), _regions(), _cfg()).baseline_metrics is None


def test_evaluate_slices_are_computed_on_their_own_rows():
    ev = evaluate.evaluate(Rule(), _regions(), _cfg(slice_columns=["region"]))
    assert ev.slices["region=north"]["rows"] == 80
    assert ev.slices["region=north"]["accuracy"] == 1.0
    assert ev.slices["region=south"]["accuracy"] == 0.0
    assert ev.metrics["accuracy"] == 0.5


def test_evaluate_small_slices_get_rows_and_a_flag_but_no_metrics():
    df = pd.concat(
        [_regions(), pd.DataFrame({"region": ["west"] * 3, "y": [0, 1, 1], "score": 0.5})]
    )
    ev = evaluate.evaluate(Rule(), df, _cfg(slice_columns=["region"]))
    assert ev.slices["region=west"] == {"rows": 3, "too_small": True}
    assert ev.slices["region=north"]["too_small"] is False


def test_evaluate_missing_slice_values_form_their_own_slice():
    df = _regions()
    df.loc[:29, "region"] = None
    ev = evaluate.evaluate(Rule(), df, _cfg(slice_columns=["region"]))
    assert ev.slices["region=<missing>"]["rows"] == 30
    assert ev.slices["region=north"]["rows"] == 50


def test_evaluate_bins_a_many_valued_numeric_slice_column_into_quartiles():
    df = _regions().assign(age=np.arange(160))
    ev = evaluate.evaluate(Rule(), df, _cfg(slice_columns=["age"]))
    assert len(ev.slices) == 4
    assert all(s["rows"] == 40 for s in ev.slices.values())


def test_evaluate_fairness_gap_is_one_when_only_one_group_gets_positives():
    df = pd.DataFrame({"group": ["a"] * 50 + ["b"] * 50, "y": np.tile([0, 1], 50)})
    df["score"] = np.where(df["group"] == "a", 0.9, 0.1)
    ev = evaluate.evaluate(Rule(), df, _cfg(sensitive_column="group"))
    fair = ev.fairness
    assert fair["column"] == "group"
    assert fair["groups"]["a"]["positive_rate"] == 1.0
    assert fair["groups"]["b"]["positive_rate"] == 0.0
    assert fair["positive_rate_difference"] == 1.0
    assert fair["positive_rate_ratio"] == 0.0
    assert fair["recall_difference"] == 1.0


def test_evaluate_fairness_of_an_even_model_has_no_gap():
    df = _regions().assign(score=lambda d: d["y"] * 0.8 + 0.1)
    ev = evaluate.evaluate(Rule(), df, _cfg(sensitive_column="region"))
    assert ev.fairness["recall_difference"] == 0.0
    assert ev.fairness["recall_ratio"] == 1.0


def test_evaluate_fairness_leaves_small_groups_out_of_the_gap():
    df = pd.concat([_regions().assign(score=lambda d: d["y"] * 0.8 + 0.1)])
    tiny = pd.DataFrame({"region": ["west"] * 4, "y": [1, 1, 1, 1], "score": 0.1})
    ev = evaluate.evaluate(Rule(), pd.concat([df, tiny]), _cfg(sensitive_column="region"))
    assert ev.fairness["groups"]["west"]["recall"] == 0.0
    assert ev.fairness["groups"]["west"]["too_small"] is True
    assert ev.fairness["recall_difference"] == 0.0


def test_evaluate_fairness_notes_when_fewer_than_two_groups_count():
    df = _regions().assign(region="north")
    ev = evaluate.evaluate(Rule(), df, _cfg(sensitive_column="region"))
    assert ev.fairness["positive_rate_difference"] is None
    assert any("fewer than 2 groups" in note for note in ev.notes)


def test_evaluate_regression_fairness_compares_mean_prediction_and_mae():
    df = pd.DataFrame({"g": ["a"] * 20 + ["b"] * 20, "y": 1.0, "guess": [1.0] * 20 + [3.0] * 20})
    ev = evaluate.evaluate(Regressor(), df, _cfg(task="regression", sensitive_column="g"))
    assert ev.fairness["mean_prediction_difference"] == 2.0
    assert ev.fairness["mae_difference"] == 2.0
    assert ev.fairness["mae_ratio"] == 0.0


def test_evaluate_roc_curve_is_downsampled_and_keeps_its_endpoints():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.integers(0, 2, 2000), "score": rng.random(2000)})
    roc = evaluate.evaluate(Rule(), df, _cfg()).curves["roc"]
    assert len(roc["fpr"]) <= 200
    assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0)
    assert (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
    assert all(np.isfinite(roc["thresholds"])) and max(roc["thresholds"]) <= 1.0


def test_evaluate_pr_curve_lists_have_equal_length():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": rng.integers(0, 2, 500), "score": rng.random(500)})
    pr = evaluate.evaluate(Rule(), df, _cfg()).curves["pr"]
    assert len(pr["precision"]) == len(pr["recall"]) == len(pr["thresholds"]) <= 200


def test_evaluate_confusion_matrix_counts_rows_by_truth_and_prediction():
    df = pd.DataFrame({"y": [1, 1, 0, 0, 0], "score": [0.9, 0.2, 0.7, 0.1, 0.1]})
    confusion = evaluate.evaluate(Rule(), df, _cfg()).curves["confusion"]
    assert confusion == {"labels": [0, 1], "matrix": [[2, 1], [1, 1]]}


def test_evaluate_calibration_bins_cover_every_row():
    df = pd.DataFrame({"y": [0, 1, 1, 1], "score": [0.05, 0.05, 0.95, 0.95]})
    bins = evaluate.evaluate(Rule(), df, _cfg()).curves["calibration"]["bins"]
    assert [(b["rows"], b["fraction_positive"]) for b in bins] == [(2, 0.5), (2, 1.0)]


def test_evaluate_regression_calibration_compares_predicted_and_actual_means():
    df = pd.DataFrame({"y": np.arange(100.0), "guess": np.arange(100.0) + 1})
    bins = evaluate.evaluate(Regressor(), df, _cfg(task="regression")).curves["calibration"]["bins"]
    assert sum(b["rows"] for b in bins) == 100
    assert all(b["mean_predicted"] - b["mean_actual"] == pytest.approx(1.0) for b in bins)


def test_evaluation_round_trips_through_strict_json():
    ev = evaluate.evaluate(
        Rule(), _regions(), _cfg(slice_columns=["region"], sensitive_column="region")
    )
    data = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    assert evaluate.Evaluation.from_dict(data) == ev


def test_evaluation_from_dict_rejects_a_dict_that_is_not_an_evaluation():
    with pytest.raises(errors.ConfigError, match="not an evaluation"):
        evaluate.Evaluation.from_dict({"task": "classification"})


def test_flat_metrics_flattens_overall_baseline_slice_and_fairness_values():
    df = _regions()
    base = dummy.DummyClassifier(strategy="prior").fit(df[["score"]], df["y"])
    ev = evaluate.evaluate(
        Rule(), df, _cfg(slice_columns=["region"], sensitive_column="region"), baseline=base
    )
    flat = evaluate.flat_metrics(ev)
    assert flat["accuracy"] == 0.5
    assert flat["baseline/roc_auc"] == 0.5
    assert flat["slice/region=north/accuracy"] == 1.0
    assert flat["slice/region=north/rows"] == 80.0
    assert flat["fairness/region/recall_difference"] == 1.0
    assert flat["test_rows"] == 160.0
    assert all(isinstance(v, float) for v in flat.values())


def test_flat_metrics_leaves_out_undefined_values():
    df = pd.DataFrame({"y": [1, 1, 1], "score": [0.9, 0.8, 0.4]})
    flat = evaluate.flat_metrics(evaluate.evaluate(Rule(), df, _cfg()))
    assert "roc_auc" not in flat
    assert "accuracy" in flat


def test_kfp_curves_gives_roc_and_confusion_calls_with_text_categories():
    calls = dict(evaluate.kfp_curves(evaluate.evaluate(Rule(), _regions(), _cfg())))
    fpr, tpr, thresholds = calls["log_roc_curve"]
    assert len(fpr) == len(tpr) == len(thresholds)
    categories, matrix = calls["log_confusion_matrix"]
    assert categories == ["0", "1"]
    assert sum(map(sum, matrix)) == 160


def test_kfp_curves_is_empty_for_regression():
    df = pd.DataFrame({"y": [1.0, 2.0], "guess": [1.0, 2.5]})
    assert evaluate.kfp_curves(evaluate.evaluate(Regressor(), df, _cfg(task="regression"))) == []


def test_evaluate_fails_on_empty_test_data():
    with pytest.raises(errors.DataError, match="no rows"):
        evaluate.evaluate(Rule(), pd.DataFrame({"y": [], "score": []}), _cfg())


def test_evaluate_fails_when_the_label_is_absent():
    with pytest.raises(errors.SchemaViolation, match="'y' violates present"):
        evaluate.evaluate(Rule(), pd.DataFrame({"score": [0.1]}), _cfg())


def test_evaluate_fails_when_a_slice_column_is_absent():
    with pytest.raises(errors.SchemaViolation, match="'plan' violates present"):
        evaluate.evaluate(Rule(), _regions(), _cfg(slice_columns=["plan"]))


def test_evaluate_fails_on_null_labels():
    df = pd.DataFrame({"y": [1.0, None], "score": [0.9, 0.1]})
    with pytest.raises(errors.SchemaViolation, match=r"1 test rows have no label, e.g. rows \[1\]"):
        evaluate.evaluate(Rule(), df, _cfg())


def test_evaluate_fails_when_a_model_input_is_absent():
    df = _separable()
    model = tree.DecisionTreeClassifier().fit(df[["x"]], df["y"])
    with pytest.raises(errors.SchemaViolation, match="'x' violates present: the model needs"):
        evaluate.evaluate(model, df.drop(columns="x"), _cfg())


def test_evaluate_wraps_a_prediction_failure_as_model_error():
    with pytest.raises(errors.ModelError, match="Broken failed to predict 160 test rows"):
        evaluate.evaluate(Broken(), _regions(), _cfg())


def test_evaluate_scores_a_kfops_trained_pipeline_on_a_frame_with_extra_columns():
    from kfops import schema, train

    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"spend": rng.normal(50, 10, n), "region": rng.choice(["north", "south"], n)})
    df["y"] = (df["spend"] > 50).astype(int)
    cols = tuple(
        schema.ColumnSpec(c, schema.dtype_of(df[c]), role="label" if c == "y" else "feature")
        for c in df.columns
    )
    cfg = train.TrainConfig("y", search_iterations=1, cv_folds=2)
    result = train.train(df[:300], schema.Schema(cols, label="y"), cfg)
    test = df[300:].assign(request_id=range(100))
    ev = evaluate.evaluate(
        result.pipeline, test, _cfg(slice_columns=["region"]), baseline=result.baseline
    )
    assert ev.metrics["roc_auc"] > 0.95
    assert ev.baseline_metrics["roc_auc"] == 0.5
    assert ev.slices["region=north"]["rows"] + ev.slices["region=south"]["rows"] == 100


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evaluate_binary_precision_recall_f1_agree_with_scikit_learn(seed):
    from sklearn import metrics as sk

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"y": rng.integers(0, 2, 300), "score": rng.random(300) * (seed + 1) / 3})
    ev = evaluate.evaluate(Rule(), df, _cfg())
    predicted = (df["score"] > 0.5).astype(int)  # argmax of [1 - p, p]
    for name, fn in (
        ("precision", sk.precision_score),
        ("recall", sk.recall_score),
        ("f1", sk.f1_score),
    ):
        assert ev.metrics[name] == pytest.approx(fn(df["y"], predicted, zero_division=0)), name
