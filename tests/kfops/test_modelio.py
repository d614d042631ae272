import os
import pickle
import subprocess
import sys
import types
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn import dummy

from kfops import dataio, errors, modelio

# Trains on data the script makes, saves the model and prints its sha256. Run in fresh processes
# with different hash seeds, so set ordering or object ids leaking into the pickle would show.
_TRAIN_SCRIPT = """
import sys
import numpy as np, pandas as pd
from kfops import modelio, schema, train
rng = np.random.default_rng(0)
n = 400
df = pd.DataFrame({"spend": rng.normal(50, 10, n), "plan": rng.choice(["a", "b", "c", None], n),
                   "vip": rng.choice([True, False], n)})
df["y"] = ((df["spend"] > 50) ^ (df["plan"] == "a")).astype(int)
cols = tuple(schema.ColumnSpec(c, schema.dtype_of(df[c]), role="label" if c == "y" else "feature")
             for c in df.columns)
for estimator in ("hist_gradient_boosting", "logistic"):
    cfg = train.TrainConfig("y", estimator=estimator, search_iterations=3, cv_folds=2, seed=5)
    result = train.train(df, schema.Schema(cols, label="y"), cfg)
    print(modelio.save_model(result.pipeline, sys.argv[1] + estimator))
"""


def _fitted(n=20):
    x = pd.DataFrame({"a": np.arange(n, dtype=float)})
    return dummy.DummyClassifier(strategy="prior").fit(x, np.arange(n) % 2)


def test_save_model_returns_the_sha256_of_the_file(tmp_path):
    path = tmp_path / "m" / "model.joblib"
    digest = modelio.save_model(_fitted(), path)
    assert digest == dataio.sha256_file(path)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_save_model_gives_the_same_bytes_for_the_same_model(tmp_path):
    model = _fitted()
    assert modelio.save_model(model, tmp_path / "a") == modelio.save_model(model, tmp_path / "b")


def test_load_model_round_trips_a_fitted_model(tmp_path):
    digest = modelio.save_model(_fitted(), tmp_path / "m")
    loaded = modelio.load_model(tmp_path / "m", expected_sha256=digest)
    assert loaded.predict_proba(pd.DataFrame({"a": [1.0]})).tolist() == [[0.5, 0.5]]


def test_load_model_refuses_a_file_whose_sha256_differs(tmp_path):
    digest = modelio.save_model(_fitted(), tmp_path / "m")
    with open(tmp_path / "m", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(errors.IntegrityError, match=f"expected {digest}"):
        modelio.load_model(tmp_path / "m", expected_sha256=digest)


def test_load_model_raises_not_found_for_a_missing_file(tmp_path):
    with pytest.raises(errors.NotFound, match="no model file"):
        modelio.load_model(tmp_path / "absent")


def test_load_model_raises_model_error_on_garbage(tmp_path):
    (tmp_path / "m").write_bytes(b"this is not a pickle")
    with pytest.raises(errors.ModelError, match="cannot load model"):
        modelio.load_model(tmp_path / "m")


def test_load_model_refuses_an_object_without_predict(tmp_path):
    joblib.dump({"not": "a model"}, tmp_path / "m")
    with pytest.raises(errors.ModelError, match="holds a dict"):
        modelio.load_model(tmp_path / "m")


def test_load_model_names_the_sklearn_version_when_unpickling_fails(tmp_path, monkeypatch):
    # A model "saved by scikit-learn 0.0.1" next to a reference this environment cannot resolve.
    module = types.ModuleType("kfops_vanished_module")

    def vanished():
        return None

    vanished.__module__, vanished.__qualname__ = module.__name__, "vanished"
    module.vanished = vanished
    monkeypatch.setitem(sys.modules, module.__name__, module)
    raw = pickle.dumps([_fitted(), vanished], protocol=modelio.PICKLE_PROTOCOL)
    monkeypatch.delitem(sys.modules, module.__name__)
    old = sklearn.__version__.encode()
    fake = b"0" * len(old)
    assert raw.count(old) == 1
    (tmp_path / "m").write_bytes(raw.replace(old, fake))
    with pytest.raises(
        errors.ModelError, match=f"saved with scikit-learn {fake.decode()}, this environment has"
    ):
        modelio.load_model(tmp_path / "m")


def test_load_model_passes_on_the_version_warning_when_loading_succeeds(tmp_path):
    raw = pickle.dumps(_fitted(), protocol=modelio.PICKLE_PROTOCOL)
    old = sklearn.__version__.encode()
    (tmp_path / "m").write_bytes(raw.replace(old, b"0" * len(old)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        modelio.load_model(tmp_path / "m")
    assert any(
        issubclass(w.category, sklearn.exceptions.InconsistentVersionWarning) for w in caught
    )


def test_training_twice_in_separate_processes_gives_identical_model_bytes(tmp_path):
    runs = []
    for i, hash_seed in enumerate(("1", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        cmd = [sys.executable, "-c", _TRAIN_SCRIPT, str(tmp_path / f"run{i}-")]
        runs.append(
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    digests = [out.split() for out, _ in outputs]
    assert len(digests[0]) == 2
    assert digests[0] == digests[1]
    for estimator in ("hist_gradient_boosting", "logistic"):
        first, second = tmp_path / f"run0-{estimator}", tmp_path / f"run1-{estimator}"
        assert first.read_bytes() == second.read_bytes()
    assert digests[0][0] == dataio.sha256_file(tmp_path / "run0-hist_gradient_boosting")


def test_as_text_maps_every_missing_marker_to_nan_and_values_to_str():
    frame = pd.DataFrame(
        {"c": ["a", None, np.nan, 3], "b": pd.array([True, None, False, True], dtype="boolean")}
    )
    out = modelio.as_text(frame)
    assert out[:, 0].tolist()[0] == "a" and out[3, 0] == "3"
    assert all(isinstance(v, float) and np.isnan(v) for v in (out[1, 0], out[2, 0], out[1, 1]))
    assert out[0, 1] == "True"


def test_as_float_turns_pandas_missing_values_into_nan():
    frame = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")})
    out = modelio.as_float(frame)
    assert out.dtype == np.float64
    assert np.isnan(out[1, 0]) and out[2, 0] == 3.0


def test_model_bytes_do_not_depend_on_the_process_thread_count(tmp_path):
    # HistGradientBoosting's sums depend on the OpenMP thread count (measured: 2000 rows with
    # 1 vs 2 threads give different bytes), so train pins it; the ambient limit must not matter.
    import threadpoolctl

    from kfops import schema, train

    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("xyz"), n)}
    )
    df["y"] = (df["a"] + df["b"] * (df["c"] == "x") + rng.normal(size=n) > 0).astype(int)
    cols = tuple(
        schema.ColumnSpec(c, schema.dtype_of(df[c]), role="label" if c == "y" else "feature")
        for c in df.columns
    )
    cfg = train.TrainConfig("y", search_iterations=1, cv_folds=2)
    digests = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads):
            result = train.train(df, schema.Schema(cols, label="y"), cfg)
        digests.append(modelio.save_model(result.pipeline, tmp_path / f"m{threads}"))
    assert digests[0] == digests[1]
