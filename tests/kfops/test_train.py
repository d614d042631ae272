import json

import numpy as np
import pandas as pd
import pytest
from sklearn import dummy, pipeline

from kfops import decision, errors, schema, train


def _frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    spend = rng.normal(50, 10, n)
    plan = rng.choice(["basic", "pro", None], n)
    df = pd.DataFrame(
        {
            "spend": spend,
            "age": rng.integers(18, 80, n).astype(float),
            "plan": plan,
            "vip": rng.choice([True, False], n),
            "signup": pd.date_range("2024-01-01", periods=n, freq="h"),
            "y": (spend > 50).astype(int),
        }
    )
    df.loc[::11, "age"] = np.nan
    return df


def _schema(df, label="y", roles=None):
    roles = roles or {}
    cols = tuple(
        schema.ColumnSpec(
            c, schema.dtype_of(df[c]), role="label" if c == label else roles.get(c, "feature")
        )
        for c in df.columns
    )
    return schema.Schema(cols, label=label)


def _cfg(**kw):
    return train.TrainConfig(**{"label": "y", "search_iterations": 2, "cv_folds": 2, **kw})


@pytest.fixture(scope="module")
def trained():
    df = _frame()
    return df, train.train(df, _schema(df), _cfg())


def test_train_config_rejects_unknown_estimator():
    with pytest.raises(errors.ConfigError, match="estimator"):
        train.TrainConfig(label="y", estimator="xgboost")


def test_train_config_rejects_logistic_for_regression():
    with pytest.raises(errors.ConfigError, match="use 'linear'"):
        train.TrainConfig(label="y", task="regression", estimator="logistic")


@pytest.mark.parametrize(
    "field,value",
    [
        ("search_iterations", 0),
        ("cv_folds", 1),
        ("seed", -1),
        ("max_search_rows", 5),
        ("n_threads", -1),
    ],
)
def test_train_config_rejects_out_of_range_integers(field, value):
    with pytest.raises(errors.ConfigError, match=field):
        train.TrainConfig(label="y", **{field: value})


def test_train_config_rejects_a_single_string_as_feature_columns():
    with pytest.raises(errors.ConfigError, match="list of names"):
        train.TrainConfig(label="y", feature_columns="spend")


def test_train_returns_one_pipeline_with_preprocessing_and_estimator(trained):
    _, result = trained
    assert isinstance(result.pipeline, pipeline.Pipeline)
    assert [name for name, _ in result.pipeline.steps] == ["preprocess", "model"]
    # a binary classifier's final step carries its decision threshold (kfops.decision)
    assert type(result.pipeline[-1]).__name__ == "FixedThresholdClassifier"
    assert type(decision.inner(result.pipeline)).__name__ == "HistGradientBoostingClassifier"


def test_train_baseline_is_a_prior_dummy_in_the_same_kind_of_pipeline(trained):
    df, result = trained
    assert isinstance(result.baseline[-1], dummy.DummyClassifier)
    proba = result.baseline.predict_proba(df.head(3))[:, 1]
    assert proba == pytest.approx([df["y"].mean()] * 3)


def test_train_learns_a_separable_label(trained):
    df, result = trained
    assert (result.pipeline.predict(df) == df["y"]).mean() > 0.95
    assert result.cv_score > 0.95
    assert result.cv_metric == "roc_auc"


def test_train_uses_schema_features_and_types_and_leaves_datetime_out(trained):
    _, result = trained
    assert result.feature_names == ["spend", "age", "plan", "vip"]
    assert result.feature_types == {
        "spend": "float",
        "age": "float",
        "plan": "string",
        "vip": "bool",
    }
    assert any("'signup'" in note for note in result.notes)


def test_train_ignores_columns_whose_schema_role_is_not_feature():
    df = _frame()
    result = train.train(df, _schema(df, roles={"age": "id"}), _cfg())
    assert "age" not in result.feature_names


def test_train_feature_columns_override_the_schema():
    df = _frame()
    result = train.train(df, _schema(df), _cfg(feature_columns=["spend"]))
    assert result.feature_names == ["spend"]


def test_train_predicts_serving_rows_with_unknown_category_and_nulls(trained):
    _, result = trained
    row = pd.DataFrame([{"spend": 80.0, "age": None, "plan": "enterprise", "vip": None}])
    assert result.pipeline.predict(row).tolist() == [1]


def test_train_search_starts_with_defaults_and_reports_each_candidate():
    df = _frame()
    result = train.train(df, _schema(df), _cfg(search_iterations=3))
    assert len(result.search) == 3
    assert result.search[0]["params"]["learning_rate"] == 0.1
    best = max(result.search, key=lambda c: c["score"])
    assert result.params == best["params"]
    assert result.cv_score == best["score"]


def test_train_search_runs_on_at_most_max_search_rows():
    df = _frame(400)
    result = train.train(df, _schema(df), _cfg(max_search_rows=100))
    assert result.search_rows == 100
    assert result.n_rows == 400


@pytest.mark.parametrize("estimator", ["logistic", "linear", "random_forest"])
def test_train_fits_every_classification_estimator(estimator):
    df = _frame()
    result = train.train(df, _schema(df), _cfg(estimator=estimator))
    assert result.estimator == estimator
    assert (result.pipeline.predict(df) == df["y"]).mean() > 0.9


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "linear", "random_forest"])
def test_train_fits_every_regression_estimator(estimator):
    df = _frame().assign(y=lambda d: d["spend"] * 2.0)
    result = train.train(df, _schema(df), _cfg(task="regression", estimator=estimator))
    assert result.cv_metric == "r2"
    assert result.label_classes is None
    assert result.cv_score > 0.6  # the mean baseline scores about 0
    assert isinstance(result.baseline[-1], dummy.DummyRegressor)


def test_train_multiclass_uses_log_loss_for_the_search():
    df = _frame().assign(
        y=lambda d: pd.cut(d["spend"], [-np.inf, 45, 55, np.inf], labels=["lo", "mid", "hi"])
    )
    df["y"] = df["y"].astype(str)
    result = train.train(df, _schema(df), _cfg())
    assert result.cv_metric == "neg_log_loss"
    assert result.label_classes == ["hi", "lo", "mid"]


def test_train_label_classes_are_plain_python_values(trained):
    _, result = trained
    assert result.label_classes == [0, 1]
    assert all(type(c) is int for c in result.label_classes)


def test_train_metadata_names_framework_versions_params_and_features(trained):
    _, result = trained
    meta = json.loads(json.dumps(result.metadata()))
    assert meta["framework"] == "sklearn"
    assert meta["framework_version"].count(".") >= 1
    assert meta["params"] == result.params
    assert meta["features"] == ["spend", "age", "plan", "vip"]
    assert meta["feature_types"]["plan"] == "string"
    assert meta["cv_score"] == result.cv_score


def test_train_result_round_trips_through_a_dict(trained):
    _, result = trained
    data = json.loads(json.dumps(result.to_dict()))
    again = train.TrainResult.from_dict(data, pipeline=result.pipeline, baseline=result.baseline)
    assert again == result


def test_train_fails_when_the_label_is_absent():
    df = _frame().drop(columns="y")
    with pytest.raises(errors.SchemaViolation, match="'y' violates present"):
        train.train(df, _schema(_frame()), _cfg())


def test_train_fails_on_a_single_class_label():
    df = _frame().assign(y=1)
    with pytest.raises(errors.SchemaViolation, match="at least 2 classes.*only one class 1"):
        train.train(df, _schema(df), _cfg())


def test_train_fails_on_null_labels_naming_rows():
    df = _frame().assign(y=lambda d: d["y"].astype(float))
    df.loc[[4, 9], "y"] = np.nan
    with pytest.raises(errors.SchemaViolation, match=r"2 rows have no label, e.g. rows \[4, 9\]"):
        train.train(df, _schema(df), _cfg())


def test_train_fails_when_a_class_is_smaller_than_the_folds():
    df = _frame()
    df.loc[0, "y"] = 7
    with pytest.raises(errors.SchemaViolation, match=r"\['7'\].*lower cv_folds"):
        train.train(df, _schema(df), _cfg(cv_folds=3))


def test_train_fails_without_features():
    df = _frame()[["signup", "y"]]
    with pytest.raises(errors.ConfigError, match="no features"):
        train.train(df, _schema(df), _cfg())


def test_train_fails_when_the_label_is_listed_as_a_feature():
    df = _frame()
    with pytest.raises(errors.ConfigError, match="leaks"):
        train.train(df, _schema(df), _cfg(feature_columns=["spend", "y"]))


def test_train_fails_when_a_feature_is_missing_from_the_data():
    df = _frame()
    with pytest.raises(errors.SchemaViolation, match=r"\['spend'\] are not among"):
        train.train(df.drop(columns="spend"), _schema(df), _cfg())


def test_train_fails_on_infinite_feature_values():
    df = _frame()
    df.loc[[2, 5], "spend"] = np.inf
    with pytest.raises(errors.SchemaViolation, match=r"'spend' violates finite: 2 infinite values"):
        train.train(df, _schema(df), _cfg())


def test_train_fails_when_a_numeric_feature_holds_text():
    df = _frame()
    sch = _schema(df)
    df["age"] = df["age"].astype(object)
    df.loc[3, "age"] = "old"
    with pytest.raises(errors.SchemaViolation, match="'age' violates type"):
        train.train(df, sch, _cfg())


def test_train_regression_fails_on_text_labels():
    df = _frame().assign(y=lambda d: np.where(d["y"] == 1, "yes", "no"))
    with pytest.raises(errors.SchemaViolation, match="numeric"):
        train.train(df, _schema(df), _cfg(task="regression"))


def test_train_is_deterministic_within_a_process():
    df = _frame()
    a = train.train(df, _schema(df), _cfg(seed=3))
    b = train.train(df, _schema(df), _cfg(seed=3))
    assert a.search == b.search
    np.testing.assert_array_equal(a.pipeline.predict_proba(df), b.pipeline.predict_proba(df))


def _encoder(result):
    return result.pipeline.named_steps["preprocess"].named_transformers_["categorical"][-1]


def test_train_pools_rare_categories_only_when_a_feature_has_more_than_255_values():
    df = _frame(600).assign(city=[f"c{i % 300}" for i in range(600)])
    wide = train.train(df, _schema(df), _cfg())
    assert _encoder(wide).max_categories == 255
    assert wide.pipeline.predict(df.head(2).assign(city="never-seen")).shape == (2,)
    narrow = train.train(_frame(), _schema(_frame()), _cfg())
    assert _encoder(narrow).max_categories is None


def test_train_one_hot_encoding_stays_bounded_for_a_many_valued_feature():
    df = _frame(600).assign(city=[f"c{i % 300}" for i in range(600)])
    result = train.train(df, _schema(df), _cfg(estimator="logistic"))
    width = result.pipeline.named_steps["preprocess"].transform(df.head(1)).shape[1]
    assert width <= 2 + 50 + 3 + 2  # numeric + pooled city + plan + vip
