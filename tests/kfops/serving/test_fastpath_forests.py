"""kfops.serving.fastpath.forests: random forests and extra-trees answer as sklearn does."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from kfops.serving import fastpath, model
from kfops.serving.fastpath import estimators, forests
from tests.kfops.serving import agreement
from tests.kfops.serving.test_fastpath_trees import (
    SPEC,
    TYPES,
    _columns,
    _frame,
)

N_TRAIN, N_TEST = 300, 1200
MODELS = {
    "forest_binary": lambda: RandomForestClassifier(30, random_state=0),
    "forest_three": lambda: RandomForestClassifier(20, max_depth=6, random_state=0),
    "extra_binary": lambda: ExtraTreesClassifier(20, random_state=0),
    "forest_regressor": lambda: RandomForestRegressor(20, random_state=0),
    "extra_regressor": lambda: ExtraTreesRegressor(15, random_state=0),
}
CASES = [(kind, nan) for kind in MODELS for nan in (False, True)]


def _matrix(n: int, seed: int, nan: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    if nan:
        x[rng.random(n) < 0.15, 0] = np.nan
    score = np.nan_to_num(x[:, 0]) + x[:, 1] - (x[:, 2] > 1)
    return x, score + rng.normal(0, 0.3, n)


@functools.cache
def _fitted(kind: str, nan: bool):
    x, score = _matrix(N_TRAIN, 0, nan)
    if kind.endswith("binary"):
        y = np.where(score > 0, "yes", "no")
    elif kind.endswith("three"):
        y = np.digitize(score, [-0.7, 0.7])
    else:
        y = score
    return MODELS[kind]().fit(x, y)


def _test_matrix() -> np.ndarray:
    """Ordinary rows and the odd ones: NaN, +-inf, beyond float32, float32 rounding edges."""
    x, _ = _matrix(N_TEST, 1, nan=False)
    x[:30, 0] = np.nan
    x[30:40, 1] = np.inf
    x[40:50, 2] = -np.inf
    x[50:60, 3] = 1e308  # finite in float64, infinite once cast to float32: sklearn refuses
    x[60:70, 1] = 3.0e38  # still finite in float32
    return x


def _at_thresholds(est, n: int = 40) -> np.ndarray:
    """Rows whose value equals a split threshold (where `<=` and `<` part ways), when the
    threshold is a float32 value; other thresholds land next to it."""
    tree = est.estimators_[0].tree_
    nodes = np.flatnonzero(tree.children_left >= 0)[:n]
    x = np.zeros((len(nodes), est.n_features_in_))
    x[np.arange(len(nodes)), tree.feature[nodes]] = tree.threshold[nodes].astype(np.float32)
    return x


def _sklearn(est, x: np.ndarray):
    try:
        proba = est.predict_proba(x) if hasattr(est, "predict_proba") else None
        return est.predict(x), proba
    except ValueError:
        return None


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    case=st.sampled_from(CASES),
    picks=st.lists(st.integers(60, N_TEST - 1), min_size=1, max_size=1000),
    odd=st.lists(st.integers(0, 59), max_size=2),
)
def test_any_batch_is_sklearns_to_the_bit(case, picks, odd):
    """Property: every forest kind, fitted with or without NaN, 1..1000 rows drawn from ordinary
    and odd rows: the compiled walk answers exactly as sklearn (same labels, bit-equal
    probabilities or values), and refuses what sklearn refuses."""
    est = _fitted(*case)
    x = np.vstack([_test_matrix()[picks + odd], _at_thresholds(est)])
    want = _sklearn(est, x)
    block = forests.block_predictor(est)
    if want is None:
        with pytest.raises(ValueError):
            block(x, True)
        return
    labels, proba = block(x, want[1] is not None)
    np.testing.assert_array_equal(labels, want[0])
    if want[1] is not None:
        np.testing.assert_array_equal(proba, want[1])


def test_the_estimator_dispatch_uses_the_compiled_walk():
    est = _fitted("forest_binary", True)
    assert estimators.block_predictor(est).__qualname__.startswith("block_predictor.<locals>")
    assert estimators.block_predictor(est).__module__ == forests.__name__


def test_a_training_pipeline_forest_gets_the_verified_fast_path():
    """kfops' own random_forest pipeline: compiled, verified on the probe rows, equal answers."""
    from kfops.train import setup as train_estimators  # noqa: PLC0415

    df = _frame(N_TRAIN, seed=0)
    pipe = train_estimators.build_pipeline("classification", "random_forest", TYPES, seed=0)
    pipe.set_params(model__n_estimators=25)
    fitted = pipe.fit(df[list(TYPES)], df["binary"])
    served = model.with_fast_path(model.ServedModel("m", "1", fitted, SPEC))
    assert served.fast is not None, served.fast_note
    columns = _columns(_frame(300, seed=1))
    import pandas as pd  # noqa: PLC0415

    frame = pd.DataFrame(columns)
    agreement.assert_same(
        served.fast.predict(columns, True), (fitted.predict(frame), fitted.predict_proba(frame))
    )
    assert isinstance(fastpath.compile_pipeline(fitted).estimator, RandomForestClassifier)


def test_nan_is_refused_when_the_trees_do_not_route_it(monkeypatch):
    """sklearn < 1.6 trees did not route NaN for every criterion; the rule is theirs
    (`_support_missing_values` of the first tree), so with it off both refuse NaN."""
    x, score = _matrix(N_TRAIN, 0, nan=False)
    est = RandomForestRegressor(5, random_state=0).fit(x, score)
    monkeypatch.setattr(est.estimators_[0], "_support_missing_values", lambda x: False)
    block = forests.block_predictor(est)
    test = _test_matrix()[:5]  # NaN in column 0
    with pytest.raises(ValueError):
        est.predict(test)
    with pytest.raises(ValueError):
        block(test, False)
    np.testing.assert_array_equal(block(x[:50], False)[0], est.predict(x[:50]))
