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

from kfops import modelio
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
