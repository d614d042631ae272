"""Which fits depend on the thread count: every estimator the trainer builds, at 1, 2 and 4.

Each kind of data the trainer builds (numeric only, with categorical features; early stopping on
and off for HistGradientBoosting) is fitted under 1, 2 and 4 threads and compared byte for byte:
the saved model file and its predictions. Where these hold, a digest is the same on any node.
"""

import hashlib

import numpy as np
import pandas as pd
import pytest
import threadpoolctl

from kfops import cpus, errors, evaluate, modelio, schema, train
from kfops.train import core, setup

THREADS = (1, 2, 4)
ROWS = 2000


def _data(task):
    rng = np.random.default_rng(7)
    x = pd.DataFrame({f"x{i}": rng.normal(size=ROWS) for i in range(6)})
    x.loc[rng.random(ROWS) < 0.05, "x0"] = np.nan
    x["c1"] = rng.choice(list("abcdefghij"), size=ROWS)
    x["c2"] = rng.choice([True, False], size=ROWS)
    score = x.x0.fillna(0) + 0.5 * x.x1 - (x.c1 == "a") + x.c2 + rng.normal(size=ROWS)
    y = (score > 0).astype(int).to_numpy() if task == "classification" else score.to_numpy()
    return x, y


CASES = [
    (task, est, kind, stop)
    for task in ("classification", "regression")
    for est in setup.ESTIMATORS
    if not (est == "logistic" and task == "regression")
    for kind in ("numeric", "categorical")
    for stop in ((True, False) if est == "hist_gradient_boosting" else (None,))
]


@pytest.mark.parametrize(("task", "estimator", "kind", "early_stopping"), CASES)
def test_model_bytes_and_predictions_do_not_depend_on_threads(
    tmp_path, task, estimator, kind, early_stopping
):
    x, y = _data(task)
    if kind == "numeric":
        x = x[[c for c in x.columns if c.startswith("x")]]
    types = {c: ("float" if c.startswith("x") else "string") for c in x.columns}
    digests, outputs = set(), set()
    for n in THREADS:
        model = setup.build_pipeline(task, estimator, types, seed=0, cardinality=10)
        if early_stopping is not None:
            model.set_params(model__early_stopping=early_stopping, model__max_iter=60)
        with core.threads(n, model):  # as kfops.train fits
            core.fit(model, x, y, estimator)
        with threadpoolctl.threadpool_limits(n):  # as kfops.evaluate predicts
            out = model.predict_proba(x) if task == "classification" else model.predict(x)
        digests.add(modelio.save_model(model, tmp_path / f"{n}.joblib"))
        outputs.add(hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest())
        if early_stopping:
            assert model.named_steps["model"].n_iter_ < 60  # it did stop early
    assert len(digests) == 1, f"model bytes differ across {THREADS} threads"
    assert len(outputs) == 1, f"predictions differ across {THREADS} threads"


def _frame():
    x, y = _data("classification")
    return x.assign(y=y).head(600)


def _schema(df):
    return schema.Schema(
        tuple(schema.ColumnSpec(c, schema.dtype_of(df[c]), role="feature") for c in df.columns[:-1])
        + (schema.ColumnSpec("y", "int", role="label"),),
        label="y",
    )


def test_search_in_two_processes_gives_the_one_process_scores_and_model(tmp_path):
    """The search's fits spread over processes; the scores, winner and model bytes do not move."""
    df = _frame()
    seen = {}
    for n in (1, 2):
        cfg = train.TrainConfig(label="y", search_iterations=4, cv_folds=2, n_threads=n)
        result = train.train(df, _schema(df), cfg)
        assert (result.n_threads, result.search_processes) == (n, n)
        digest = modelio.save_model(result.pipeline, tmp_path / f"{n}.joblib")
        seen[n] = (result.search, result.params, result.cv_score, digest)
    assert seen[1] == seen[2]
    assert len({c["score"] for c in seen[1][0]}) > 1  # the candidates really differ


@pytest.mark.parametrize(
    ("asked", "estimator"), [(0, "hist_gradient_boosting"), (2, "random_forest")]
)
def test_train_and_evaluate_run_with_and_report_the_thread_count(asked, estimator):
    df = _frame()
    data_schema = _schema(df)
    expected = asked or cpus.available()
    cfg = train.TrainConfig(
        label="y", estimator=estimator, search_iterations=2, cv_folds=2, n_threads=asked
    )
    result = train.train(df, data_schema, cfg)
    assert result.n_threads == expected
    assert result.metadata()["n_threads"] == expected
    # the forest built its trees with n_jobs threads; the saved model asks for none
    assert result.pipeline.named_steps["model"].get_params().get("n_jobs") is None
    scored = evaluate.evaluate(
        result.pipeline, df, evaluate.EvalConfig(label="y", task="classification", n_threads=asked)
    )
    assert scored.n_threads == expected
    assert scored.to_dict()["n_threads"] == expected


def test_evaluate_config_refuses_negative_threads():
    with pytest.raises(errors.ConfigError, match="n_threads"):
        evaluate.EvalConfig(label="y", task="classification", n_threads=-1)
