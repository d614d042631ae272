"""kfops.serving.fastpath.trees: HistGradientBoosting without sklearn answers as sklearn does."""

import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from kfops import schema
from kfops.serving import fastpath, model, validation
from kfops.serving.fastpath import estimators, trees
from kfops.train import setup as train_estimators
from tests.kfops.serving import agreement

N_TRAIN, N_TEST = 300, 1500
# Columns: 0 and 1 numeric (0 with NaN), 2 and 3 small integer codes (2 with NaN).
CATEGORICAL = [2, 3]


def _matrix(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(size=n),
            rng.normal(size=n),
            rng.integers(0, 6, n).astype(float),
            rng.integers(0, 4, n).astype(float),
        ]
    )
    x[rng.random(n) < 0.1, 0] = np.nan
    x[rng.random(n) < 0.1, 2] = np.nan
    score = np.nan_to_num(x[:, 0]) + x[:, 1] + (x[:, 2] == 2) - (x[:, 3] == 1)
    return x, score + rng.normal(0, 0.3, n)


def _test_matrix() -> np.ndarray:
    """Random rows plus unseen and odd categories, and extreme numbers, which sklearn answers."""
    x, _ = _matrix(N_TEST, seed=1)
    x[:40, 2] = 9.0  # a category training never saw
    x[40:60, 3] = -1.0
    x[60:80, 2] = 1.5
    x[80:100, 3] = 300.0
    x[100:120, 0] = np.inf
    x[120:140, 1] = -np.inf
    x[140:160, 0] = 1e308
    x[160:180, 1] = -1e308
    x[180:200, 3] = np.nan
    x[200:220, 3] = -0.0
    return x


MODELS = {
    "binary": lambda cat, es: HistGradientBoostingClassifier(
        max_iter=40, categorical_features=cat, early_stopping=es, random_state=0
    ),
    "three_classes": lambda cat, es: HistGradientBoostingClassifier(
        max_iter=25, categorical_features=cat, early_stopping=es, random_state=0
    ),
    "squared_error": lambda cat, es: HistGradientBoostingRegressor(
        max_iter=40, categorical_features=cat, early_stopping=es, random_state=0
    ),
    "poisson": lambda cat, es: HistGradientBoostingRegressor(
        loss="poisson", max_iter=30, categorical_features=cat, early_stopping=es, random_state=0
    ),
    "quantile": lambda cat, es: HistGradientBoostingRegressor(
        loss="quantile", quantile=0.8, max_iter=30, categorical_features=cat, random_state=0
    ),
}
CASES = [(m, cat, es) for m in MODELS for cat in (None, CATEGORICAL) for es in (False, True)]


def _target(kind: str, score: np.ndarray) -> np.ndarray:
    if kind == "binary":
        return np.where(score > 0, "yes", "no")
    if kind == "three_classes":
        return np.digitize(score, [-0.7, 0.7])
    return np.exp(score / 3) if kind == "poisson" else score


@functools.cache
def _fitted(kind: str, categorical: tuple | None, early_stopping: bool):
    x, score = _matrix(N_TRAIN, seed=0)
    cat = list(categorical) if categorical else None
    return MODELS[kind](cat, early_stopping).fit(x, _target(kind, score))


def _sklearn(est, x: np.ndarray):
    proba = est.predict_proba(x) if hasattr(est, "predict_proba") else None
    return est.predict(x), proba


@pytest.mark.parametrize("kind, categorical, early_stopping", CASES)
def test_batches_answer_as_sklearn(kind, categorical, early_stopping):
    est = _fitted(kind, tuple(categorical) if categorical else None, early_stopping)
    x = _test_matrix()
    want_labels, want_proba = _sklearn(est, x)
    block = estimators.block_predictor(est)
    # Batches of every size go through the compiled walk (or, without numba, row by row up to
    # ROWS_ONE_BY_ONE rows and through sklearn above).
    size = trees.ROWS_ONE_BY_ONE
    for start in [*range(0, len(x), size), len(x) - size - 1]:
        part = slice(start, start + size if start < len(x) - size - 1 else len(x))
        p = None if want_proba is None else want_proba[part]
        agreement.assert_same(block(x[part], want_proba is not None), (want_labels[part], p))
    # The sums are sklearn's to the bit: same trees, same order of additions.
    raw_row = trees.row_function(trees.compile_forest(est))
    np.testing.assert_array_equal(np.array([raw_row(r) for r in x.tolist()]), est._raw_predict(x))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    case=st.sampled_from(CASES),
    picks=st.lists(st.integers(0, N_TEST - 1), min_size=1, max_size=1000),
    nan_column=st.sampled_from([None, 0, 1, 2, 3]),
)
def test_any_batch_is_sklearns_to_the_bit(case, picks, nan_column):
    """Property: every estimator kind, 1..1000 rows drawn from odd and ordinary rows (unseen and
    fractional categories, +-inf, 1e308, NaN anywhere): the compiled batch walk's raw sums equal
    sklearn's bit for bit, and the block predictor answers as sklearn does."""
    kind, categorical, early_stopping = case
    est = _fitted(kind, tuple(categorical) if categorical else None, early_stopping)
    x = _test_matrix()[picks]
    if nan_column is not None:
        x[::3, nan_column] = np.nan
    raw = trees.batch_function(trees.compile_forest(est))
    assert raw is not None  # numba is a serving dependency: the walk must be there
    np.testing.assert_array_equal(raw(x), est._raw_predict(x))
    agreement.assert_same(
        estimators.block_predictor(est)(x, hasattr(est, "predict_proba")), _sklearn(est, x)
    )


@pytest.mark.parametrize("kind, categorical, early_stopping", CASES)
@pytest.mark.parametrize("kernel", ["binned", "scorer", "walk"])
def test_every_batch_kernel_is_sklearns_to_the_bit(kind, categorical, early_stopping, kernel):
    """Leaf bitmasks by feature tables or split by split (trees of <= 64 leaves) and the node
    walk (any tree) alike."""
    est = _fitted(kind, tuple(categorical) if categorical else None, early_stopping)
    forest = trees.compile_forest(est)
    x = _test_matrix()
    x[::7, 0] = np.nan
    with pytest.MonkeyPatch.context() as patch:
        if kernel != "binned":  # tables too big for the byte limit: the scorer's split lists
            patch.setattr(trees, "BINNED_BYTES", 0)
        if kernel == "walk":
            patch.setattr(trees, "SCORER_LEAVES", 0)
        assert (trees._binned_tables(forest) is None) == (kernel != "binned")
        assert (trees._scorer_tables(forest) is None) == (kernel == "walk")
        raw = trees.batch_function(forest)
    for n in (1, 2, 17, 1000, len(x)):
        np.testing.assert_array_equal(raw(x[:n]), est._raw_predict(x[:n]))


def test_trees_of_more_than_64_leaves_are_walked_as_sklearn():
    x, score = _matrix(N_TRAIN, seed=1)
    est = HistGradientBoostingRegressor(
        max_iter=5, max_leaf_nodes=120, min_samples_leaf=1, random_state=0
    ).fit(x, score)
    forest = trees.compile_forest(est)
    assert np.add.reduceat(forest.is_leaf.astype(int), forest.roots).max() > trees.SCORER_LEAVES
    assert trees._scorer_tables(forest) is None and trees._binned_tables(forest) is None
    test = _test_matrix()
    np.testing.assert_array_equal(trees.batch_function(forest)(test), est._raw_predict(test))


@pytest.mark.parametrize("kernel", ["binned", "scorer", "walk"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_an_infinite_category_is_refused_even_where_no_tree_splits_on_it(kernel, value):
    """sklearn's OrdinalEncoder refuses +-inf in every categorical column, used or not."""
    x, score = _matrix(N_TRAIN, seed=0)
    est = HistGradientBoostingRegressor(
        max_iter=2, max_leaf_nodes=2, categorical_features=CATEGORICAL, random_state=0
    ).fit(x, x[:, 1])
    forest = trees.compile_forest(est)
    assert 3 not in forest.feature[~forest.is_leaf]  # column 3 is never split on
    test = _test_matrix()[:50]
    test[7, 3] = value
    with pytest.raises(ValueError):
        est.predict(test)
    with pytest.MonkeyPatch.context() as patch:
        if kernel != "binned":
            patch.setattr(trees, "BINNED_BYTES", 0)
        if kernel == "walk":
            patch.setattr(trees, "SCORER_LEAVES", 0)
        raw = trees.batch_function(forest)
    np.testing.assert_array_equal(raw(test[:7]), est._raw_predict(test[:7]))
    with pytest.raises(ValueError):
        raw(test)


@pytest.mark.parametrize("kind, categorical, early_stopping", CASES)
def test_single_rows_answer_as_sklearn(kind, categorical, early_stopping):
    est = _fitted(kind, tuple(categorical) if categorical else None, early_stopping)
    x = _test_matrix()
    want_labels, want_proba = _sklearn(est, x)
    row = estimators.row_predictor(est)
    assert row is not None
    for i in range(0, len(x), 3):
        p = None if want_proba is None else want_proba[i : i + 1]
        agreement.assert_same(
            row(x[i].tolist(), want_proba is not None), (want_labels[i : i + 1], p)
        )


def test_a_two_hundred_iteration_model_answers_as_sklearn():
    x, score = _matrix(N_TRAIN, seed=0)
    est = HistGradientBoostingClassifier(
        max_iter=200, categorical_features=CATEGORICAL, early_stopping=False, random_state=0
    ).fit(x, score > 0)
    assert est.n_iter_ == 200
    test = _test_matrix()
    want = _sklearn(est, test)
    agreement.assert_same(estimators.block_predictor(est)(test, True), want)
    row = estimators.row_predictor(est)
    for i in range(0, len(test), 7):
        agreement.assert_same(row(test[i].tolist(), True), (want[0][i : i + 1], want[1][i : i + 1]))


@pytest.mark.parametrize("categorical", [None, tuple(CATEGORICAL)])
def test_what_sklearn_refuses_is_refused(categorical):
    """An infinite category (HGB's OrdinalEncoder refuses it), no rows, or the wrong width.

    An infinite *numeric* value is not among them: HGB accepts it (tested above)."""
    est = _fitted("binary", categorical, False)
    block, row = estimators.block_predictor(est), estimators.row_predictor(est)
    x = _test_matrix()[:5]
    x[2, 2] = np.inf
    bad = [x[:0], x[:, :3]] + ([x] if categorical else [])
    for m in bad:
        with pytest.raises(ValueError):
            est.predict(m)
        with pytest.raises(ValueError):
            block(m, True)
    if categorical:
        with pytest.raises(ValueError):
            row(x[2].tolist(), True)
    with pytest.raises(ValueError):
        row(x[2, :3].tolist(), True)


def test_a_loss_without_a_known_output_mapping_is_unsupported():
    x, score = _matrix(N_TRAIN, seed=0)
    est = HistGradientBoostingRegressor(max_iter=5).fit(x, score)
    est._loss = object()  # stands for a loss a later sklearn might add
    with pytest.raises(fastpath.Unsupported):
        trees.compile_forest(est)
    assert estimators.row_predictor(est) is None


# --- through kfops training's pipeline and the server's verification

TYPES = {"age": "int", "income": "float", "city": "string", "member": "bool"}
CITIES = ("east", "north", "south")
SPEC = schema.Schema(
    (
        schema.ColumnSpec("age", "int", nullable=False, min=18, max=79),
        schema.ColumnSpec("income", "float", nullable=True, min=5.0, max=95.0),
        schema.ColumnSpec("city", "string", nullable=True, domain=CITIES),
        schema.ColumnSpec("member", "bool", nullable=False),
    )
)
TASKS = {"binary": "classification", "three_classes": "classification", "amount": "regression"}


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n).round(2)
    income[rng.random(n) < 0.15] = np.nan
    city = rng.choice([*CITIES, "west"] if seed else CITIES, n).astype(object)
    city[rng.random(n) < 0.15] = None
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": income,
            "city": city,
            "member": rng.random(n) < 0.4,
        }
    )
    score = (df.age - 50) / 10 + np.nan_to_num(income - 50) / 15 + (df.city == "north")
    score = score + df.member + rng.normal(0, 0.3, n)
    df["binary"] = np.where(score > 0.5, "yes", "no")
    df["three_classes"] = np.array(["low", "mid", "high"])[np.digitize(score, [-0.5, 1.0])]
    df["amount"] = 3 * score
    return df


@functools.cache
def _trained(target: str, max_iter: int):
    df = _frame(N_TRAIN, seed=0)
    pipe = train_estimators.build_pipeline(TASKS[target], "hist_gradient_boosting", TYPES, seed=0)
    pipe.set_params(model__max_iter=max_iter)
    return pipe.fit(df[list(TYPES)], df[target])


def _columns(df: pd.DataFrame) -> dict[str, np.ndarray]:
    validator = validation.Validator(SPEC, validation.ValidationPolicy(check_domain=False))
    rows = df.astype(object).where(df.notna(), None)
    return validator.validate({n: rows[n].tolist() for n in TYPES}, len(df)).arrays


@pytest.mark.parametrize("target, max_iter", [(t, 30) for t in TASKS] + [("binary", 200)])
def test_training_pipelines_answer_as_sklearn_and_get_the_fast_path(target, max_iter):
    fitted = _trained(target, max_iter)
    assert isinstance(fitted[-1], HistGradientBoostingClassifier | HistGradientBoostingRegressor)
    compiled = fastpath.compile_pipeline(fitted)
    assert compiled._row_predict is not None
    want_proba = TASKS[target] == "classification"
    columns = _columns(_frame(400, seed=1))
    frame = pd.DataFrame(columns)
    want = fitted.predict(frame), (fitted.predict_proba(frame) if want_proba else None)
    agreement.assert_same(compiled.predict(columns, want_proba), want)
    for i in range(0, 400, 5):
        one = {n: v[i : i + 1] for n, v in columns.items()}
        p = None if want[1] is None else want[1][i : i + 1]
        agreement.assert_same(compiled.predict(one, want_proba), (want[0][i : i + 1], p))
    served = model.with_fast_path(model.ServedModel("m", "1", fitted, SPEC))
    assert served.fast is not None, served.fast_note


def test_trees_too_deep_for_a_row_expression_still_get_the_compiled_walk(monkeypatch):
    """Python's parser refuses ~200 nested parentheses; the walk has no such limit."""
    monkeypatch.setattr(trees, "_MAX_ROW_DEPTH", 1)
    x, score = _matrix(N_TRAIN, 0)
    est = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, score > 0)
    assert estimators.row_predictor(est) is None
    assert estimators.block_predictor(est).__module__ == trees.__name__  # not sklearn's predict
    x = _test_matrix()
    for rows in (x[:1], x[:7], x):
        agreement.assert_same(estimators.block_predictor(est)(rows, True), _sklearn(est, rows))


def test_the_walk_compiles_without_a_disk_cache_when_numba_has_nowhere_to_write(monkeypatch):
    """A read-only image and home: numba refuses `cache=True` at decoration; the walk is then
    compiled per process instead of failing the model load."""
    import numba  # noqa: PLC0415

    from kfops.serving.fastpath import walk  # noqa: PLC0415

    real, asked = numba.njit, []

    def njit(**options):
        asked.append(options["cache"])
        if options["cache"]:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x'")
        return real(**options)

    with monkeypatch.context() as patched:
        patched.setattr(numba, "njit", njit)
        twice = walk._compiled(lambda a: a * 2)
    assert asked == [True, False]
    assert twice(21) == 42  # compiled on first call, with numba's own njit restored
