"""kfops.serving.fastpath: the compiled pipeline answers as sklearn does, or it is not used."""

import dataclasses
import functools

import numpy as np
import pandas as pd
import pytest
import threadpoolctl
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    StandardScaler,
)

from kfops import schema
from kfops.serving import errors as serr
from kfops.serving import fastpath, model, validation
from kfops.train import setup as train_estimators
from tests.kfops.serving import agreement, factories

# Warnings the inputs below cause on purpose: an all-missing training column, categories training
# never saw, and values that overflow once scaled.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Skipping features without any observed values"),
    pytest.mark.filterwarnings("ignore:Found unknown categories"),
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]

CITIES = ("east", "north", "south")
TYPES = {
    "age": "int",
    "visits": "int",
    "income": "float",
    "share": "float",
    "city": "string",
    "member": "bool",
    "opted": "bool",
}
SPEC = schema.Schema(
    (
        schema.ColumnSpec("age", "int", nullable=False, min=18, max=79),
        schema.ColumnSpec("visits", "int", nullable=True, min=0, max=20),
        schema.ColumnSpec("income", "float", nullable=True, min=5.0, max=95.0),
        schema.ColumnSpec("share", "float", nullable=False, min=0.0, max=1.0),
        schema.ColumnSpec("city", "string", nullable=True, domain=CITIES),
        schema.ColumnSpec("member", "bool", nullable=False),
        schema.ColumnSpec("opted", "bool", nullable=True),
        schema.ColumnSpec("empty", "float", nullable=True),
    )
)
TARGETS = {"binary": "classification", "multiclass": "classification", "amount": "regression"}
# Rows with every null the schema allows, categories training never saw, values far out of range.
EDGE_ROWS = (
    {"age": 18, "visits": None, "income": None, "city": None, "member": False, "opted": None},
    {"age": 79, "visits": 0, "income": -1000.0, "city": "west", "member": True, "opted": True},
    {"age": 5, "visits": 300, "income": 1e6, "city": "", "member": False, "opted": False},
    {"age": 120, "visits": None, "income": 50.5, "city": "north", "member": True, "opted": None},
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """OpenMP threads cost far more than these few rows of work, and vary with machine load."""
    with threadpoolctl.threadpool_limits(1):
        yield


def _train_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n).round(2)
    income[rng.random(n) < 0.15] = np.nan
    visits = rng.integers(0, 21, n).astype(float)
    visits[rng.random(n) < 0.1] = np.nan
    city = rng.choice(CITIES, n).astype(object)
    city[rng.random(n) < 0.15] = None
    opted = (rng.random(n) < 0.5).astype(object)
    opted[rng.random(n) < 0.2] = None
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "visits": visits,
            "income": income,
            "share": rng.random(n).round(3),
            "city": city,
            "member": rng.random(n) < 0.4,
            "opted": opted,
            "empty": np.full(n, np.nan),
        }
    )
    score = (
        (df.age - 50) / 10
        + np.nan_to_num(income - 50) / 15
        + (df.city == "north")
        + df.member
        - np.nan_to_num(visits) / 10
        + df.share
    )
    df["binary"] = np.where(score + rng.normal(0, 0.5, n) > 0.5, "yes", "no")
    df["multiclass"] = np.array(["low", "mid", "high"])[np.digitize(score, [-0.5, 1.0])]
    df["amount"] = 3 * score + rng.normal(0, 0.1, n)
    return df


@functools.cache
def _raw_frame() -> pd.DataFrame:
    """The training frame with missing cities as NaN, for encoders fitted on raw columns."""
    df = _train_frame()
    df["city"] = np.array([np.nan if v is None else v for v in df["city"]], object)
    return df


def _request_rows(n: int, seed: int = 1) -> list[dict]:
    """JSON-like rows: the edge rows, then seeded ones with nulls and an unseen city."""
    rng = np.random.default_rng(seed)
    cities = [*CITIES, None, "west"]
    rows = [dict(r, share=0.5, empty=None) for r in EDGE_ROWS]
    for _ in range(n - len(rows)):
        rows.append(
            {
                "age": int(rng.integers(18, 80)),
                "visits": None if rng.random() < 0.2 else int(rng.integers(0, 21)),
                "income": None if rng.random() < 0.2 else round(float(rng.normal(50, 15)), 2),
                "share": round(float(rng.random()), 3),
                "city": cities[rng.integers(len(cities))],
                "member": bool(rng.random() < 0.4),
                "opted": [True, False, None][rng.integers(3)],
                "empty": None if rng.random() < 0.5 else float(rng.normal()),
            }
        )
    return rows


def _spec(names) -> schema.Schema:
    return schema.Schema(tuple(SPEC.column(n) for n in names))


def _validated(rows: list[dict], names) -> dict[str, np.ndarray]:
    """The columns a request of `rows` becomes (unseen categories allowed through)."""
    validator = validation.Validator(_spec(names), validation.ValidationPolicy(check_domain=False))
    return validator.validate({n: [r[n] for r in rows] for n in names}, len(rows)).arrays


def _sklearn(fitted, columns, want_proba):
    frame = pd.DataFrame(columns)
    return fitted.predict(frame), (fitted.predict_proba(frame) if want_proba else None)


def _assert_agrees(compiled, fitted, columns, want_proba) -> bool:
    """The compiled form answers as the pipeline does or refuses where it does; True: answered."""
    try:
        want = _sklearn(fitted, columns, want_proba)
    except ValueError:
        with pytest.raises(ValueError):
            compiled.predict(columns, want_proba)
        return False
    agreement.assert_same(compiled.predict(columns, want_proba), want)
    return True


def _served(fitted, names) -> model.ServedModel:
    return model.with_fast_path(model.ServedModel("m", "1", fitted, _spec(names)))


def _outcome(served, columns):
    """What ServedModel.predict gives: its outputs, or the error it raises."""
    try:
        p = served.predict(columns, True)
    except serr.ModelRejectedInput as e:
        return type(e), str(e)
    return p.predict.tolist(), None if p.proba is None else p.proba.tolist()


# --- the pipelines kfops training builds

TRAINED = [(e, t) for e in train_estimators.ESTIMATORS for t in TARGETS]


@functools.cache
def _trained(estimator: str, target: str):
    df = _train_frame()
    pipe = train_estimators.build_pipeline(TARGETS[target], estimator, TYPES, seed=0)
    # Fewer rounds and trees keep the file fast; the steps the compiler reads are unchanged.
    size = {"hist_gradient_boosting": {"model__max_iter": 15}}
    size["random_forest"] = {"model__n_estimators": 15}
    pipe.set_params(**size.get(estimator, {}))
    return pipe.fit(df[list(TYPES)], df[target])


@pytest.mark.parametrize("estimator, target", TRAINED)
def test_training_pipelines_answer_a_batch_as_sklearn(estimator, target):
    fitted = _trained(estimator, target)
    compiled = fastpath.compile_pipeline(fitted)
    assert compiled.inputs == tuple(TYPES)
    columns = _validated(_request_rows(40), TYPES)
    agreement.assert_same(
        compiled.predict(columns, TARGETS[target] == "classification"),
        _sklearn(fitted, columns, TARGETS[target] == "classification"),
    )


@pytest.mark.parametrize("estimator, target", TRAINED)
def test_training_pipelines_answer_single_rows_as_sklearn(estimator, target):
    fitted = _trained(estimator, target)
    compiled = fastpath.compile_pipeline(fitted)
    want_proba = TARGETS[target] == "classification"
    # Validated one at a time, as single-row requests are: a null int is then float64, else int64.
    for row in _request_rows(10):
        columns = _validated([row], TYPES)
        agreement.assert_same(
            compiled.predict(columns, want_proba), _sklearn(fitted, columns, want_proba)
        )


@pytest.mark.parametrize("estimator, target", TRAINED)
def test_training_pipelines_get_a_verified_fast_path(estimator, target):
    served = _served(_trained(estimator, target), TYPES)
    assert served.fast is not None, served.fast_note
    assert served.fast_note.startswith("compiled, verified")


def test_multiclass_target_has_three_classes():
    assert _trained("logistic", "multiclass").classes_.tolist() == ["high", "low", "mid"]


# --- hand-built pipelines, one setting each


def _imputed_scaled():
    return make_pipeline(SimpleImputer(), StandardScaler())


def _preprocess():
    return ColumnTransformer(
        [
            ("num", _imputed_scaled(), ["age", "visits", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )


def _imputing(strategy: str) -> Pipeline:
    text_strategy = strategy if strategy in ("most_frequent", "constant") else "most_frequent"
    return Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("num", SimpleImputer(strategy=strategy), ["age", "visits", "income"]),
                        (
                            "cat",
                            make_pipeline(
                                SimpleImputer(strategy=text_strategy),
                                OneHotEncoder(handle_unknown="ignore"),
                            ),
                            ["city"],
                        ),
                    ]
                ),
            ),
            ("est", LogisticRegression(max_iter=1000)),
        ]
    )


def _all_missing(keep_empty: bool) -> Pipeline:
    imputer = SimpleImputer(strategy="mean", keep_empty_features=keep_empty)
    return Pipeline(
        [
            ("pre", ColumnTransformer([("num", imputer, ["empty", "age", "income"])])),
            ("est", Ridge()),
        ]
    )


# id -> (input columns, target, unfitted pipeline)
HAND_BUILT = {
    "onehot_drop_first": (
        ["age", "visits", "income", "city"],
        "binary",
        lambda: Pipeline(
            [
                (
                    "pre",
                    ColumnTransformer(
                        [
                            ("num", _imputed_scaled(), ["age", "visits", "income"]),
                            ("cat", OneHotEncoder(drop="first", handle_unknown="ignore"), ["city"]),
                        ]
                    ),
                ),
                ("est", LogisticRegression()),
            ]
        ),
    ),
    "onehot_drop_if_binary_on_bool": (
        ["age", "city", "member"],
        "binary",
        lambda: Pipeline(
            [
                (
                    "pre",
                    ColumnTransformer(
                        [
                            ("num", StandardScaler(), ["age"]),
                            (
                                "cat",
                                OneHotEncoder(drop="if_binary", handle_unknown="ignore"),
                                ["city", "member"],
                            ),
                        ]
                    ),
                ),
                ("est", LogisticRegression()),
            ]
        ),
    ),
    # Defaults: unseen categories are an error; missing stays NaN, then imputed.
    "ordinal_defaults": (
        ["age", "city", "member"],
        "binary",
        lambda: Pipeline(
            [
                (
                    "pre",
                    ColumnTransformer(
                        [
                            ("num", "passthrough", ["age"]),
                            (
                                "cat",
                                make_pipeline(
                                    OrdinalEncoder(), SimpleImputer(strategy="most_frequent")
                                ),
                                ["city", "member"],
                            ),
                        ]
                    ),
                ),
                ("est", RandomForestClassifier(n_estimators=10, random_state=0)),
            ]
        ),
    ),
    "minmax_clip": (
        ["age", "visits", "income"],
        "amount",
        lambda: Pipeline(
            [
                ("impute", SimpleImputer()),
                ("scale", MinMaxScaler(feature_range=(-1, 2), clip=True)),
                ("est", Ridge()),
            ]
        ),
    ),
    **{
        f"impute_{s}": (
            ["age", "visits", "income", "city"],
            "binary",
            functools.partial(_imputing, s),
        )
        for s in ("mean", "median", "most_frequent", "constant")
    },
    "all_missing_column_dropped": (
        ["empty", "age", "income"],
        "amount",
        functools.partial(_all_missing, False),
    ),
    "all_missing_column_kept": (
        ["empty", "age", "income"],
        "amount",
        functools.partial(_all_missing, True),
    ),
    "remainder_passthrough_integer_selection": (
        ["age", "income", "city", "member"],
        "binary",
        lambda: Pipeline(
            [
                (
                    "pre",
                    ColumnTransformer(
                        [
                            ("num", _imputed_scaled(), [0, 1]),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), [2]),
                        ],
                        remainder="passthrough",
                    ),
                ),
                ("est", LogisticRegression()),
            ]
        ),
    ),
    "boolean_mask_selection": (
        ["age", "income", "city"],
        "amount",
        lambda: Pipeline(
            [
                ("pre", ColumnTransformer([("num", _imputed_scaled(), [True, True, False])])),
                ("est", Ridge()),
            ]
        ),
    ),
    "steps_after_the_column_transformer": (
        ["age", "visits", "income", "city"],
        "binary",
        lambda: Pipeline(
            [
                (
                    "pre",
                    ColumnTransformer(
                        [
                            ("num", "passthrough", ["age", "visits", "income"]),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                        ]
                    ),
                ),
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
                ("est", LogisticRegression()),
            ]
        ),
    ),
    "multiclass_logistic": (
        ["age", "visits", "income", "city"],
        "multiclass",
        lambda: Pipeline([("pre", _preprocess()), ("est", LogisticRegression(C=0.5))]),
    ),
    "ridge": (
        ["age", "visits", "income", "city"],
        "amount",
        lambda: Pipeline([("pre", _preprocess()), ("est", Ridge(alpha=0.3))]),
    ),
}


@functools.cache
def _hand_built(case: str):
    names, target, build = HAND_BUILT[case]
    df = _raw_frame()
    return build().fit(df[names], df[target]), names, TARGETS[target] == "classification"


@pytest.mark.parametrize("case", HAND_BUILT)
def test_hand_built_pipelines_answer_as_sklearn(case):
    fitted, names, want_proba = _hand_built(case)
    compiled = fastpath.compile_pipeline(fitted)
    rows = _request_rows(30)
    known = [r for r in rows if r["city"] in (*CITIES, None)]
    answered = [
        _assert_agrees(compiled, fitted, _validated(batch, names), want_proba)
        for batch in (rows, known)
    ]
    answered += [
        _assert_agrees(compiled, fitted, _validated([row], names), want_proba) for row in rows[:12]
    ]
    # Refusals are only expected of the encoder that errors on unseen categories.
    assert all(answered) == (case != "ordinal_defaults")
    assert answered[1]


@pytest.mark.parametrize("case", HAND_BUILT)
def test_hand_built_pipelines_get_a_verified_fast_path(case):
    fitted, names, _ = _hand_built(case)
    served = _served(fitted, names)
    assert served.fast is not None, served.fast_note


def test_all_missing_training_column_is_dropped_as_sklearn_drops_it():
    fitted, names, _ = _hand_built("all_missing_column_dropped")
    compiled = fastpath.compile_pipeline(fitted)
    assert compiled.estimator.n_features_in_ == 2
    rows = [dict(r, empty=1e6 * i) for i, r in enumerate(_request_rows(5))]
    agreement.assert_same(
        compiled.predict(_validated(rows, names), False),
        _sklearn(fitted, _validated(rows, names), False),
    )


def test_onehot_error_on_unseen_category_gives_sklearns_error():
    names = ["age", "city"]
    df = _raw_frame()
    fitted = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age"]),
                        ("cat", OneHotEncoder(handle_unknown="error"), ["city"]),
                    ]
                ),
            ),
            ("est", LogisticRegression()),
        ]
    ).fit(df[names], df["binary"])
    fast = _served(fitted, names)
    assert fast.fast is not None, fast.fast_note  # it refuses exactly where sklearn does
    slow = dataclasses.replace(fast, fast=None)
    known, unseen = {"age": 40, "city": "north"}, {"age": 40, "city": "west"}
    for rows in ([unseen], [known, unseen]):
        columns = _validated(rows, names)
        with pytest.raises(ValueError, match="unknown categories"):
            fast.fast.predict(columns, True)
        with pytest.raises(serr.ModelRejectedInput) as by_fast:
            fast.predict(columns, True)
        with pytest.raises(serr.ModelRejectedInput) as by_sklearn:
            slow.predict(columns, True)
        assert str(by_fast.value) == str(by_sklearn.value)
    columns = _validated([known, known], names)
    agreement.assert_same(fast.fast.predict(columns, True), _sklearn(fitted, columns, True))


# --- what the fast path does not rewrite

UNSUPPORTED = {
    "PolynomialFeatures": ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(), PolynomialFeatures(2)), ["age", "income"])]
    ),
    "log1p": ColumnTransformer(
        [
            ("log", FunctionTransformer(np.log1p), ["age"]),
            ("num", SimpleImputer(), ["income"]),
        ]
    ),
    "OneHotEncoder with infrequent": ColumnTransformer(
        [
            ("num", SimpleImputer(), ["age", "income"]),
            (
                "cat",
                OneHotEncoder(max_categories=2, handle_unknown="infrequent_if_exist"),
                ["city"],
            ),
        ]
    ),
}


@pytest.mark.parametrize("step", UNSUPPORTED)
def test_unsupported_steps_are_named_and_left_to_sklearn(step):
    names = ["age", "income", "city"]
    df = _raw_frame()
    fitted = Pipeline([("pre", UNSUPPORTED[step]), ("est", LogisticRegression(max_iter=1000))])
    fitted.fit(df[names], df["binary"])
    with pytest.raises(fastpath.Unsupported, match=step):
        fastpath.compile_pipeline(fitted)
    served = _served(fitted, names)
    assert served.fast is None
    assert step in served.fast_note
    rows = [r for r in _request_rows(20) if r["income"] is None or r["income"] > -1]
    for batch in (rows, rows[:1], rows[1:2]):
        columns = _validated(batch, names)
        got = served.predict(columns, True)
        agreement.assert_same((got.predict, got.proba), _sklearn(fitted, columns, True))


def test_unseen_setting_transformer_weights_is_caught_by_verify():
    """The compiler ignores ColumnTransformer weights; verification must keep it out of service."""
    names = ["age", "income", "city"]
    df = _raw_frame()
    pre = ColumnTransformer(
        [
            ("num", _imputed_scaled(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ],
        transformer_weights={"num": 3.0},
    )
    fitted = Pipeline([("pre", pre), ("est", LogisticRegression())]).fit(df[names], df["binary"])
    served = _served(fitted, names)
    assert served.fast is None
    assert "disagrees" in served.fast_note


# --- whatever compiling cannot do, sklearn still answers, as sklearn would


def _city_age_frame(n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "city": rng.choice(CITIES, n).astype(object),
            "age": rng.integers(18, 80, n),
        }
    )
    return df, (df.city == "north").to_numpy() | (df.age > 60).to_numpy()


COMPILE_CRASHES = {
    # A scalar column selection hands the transformer a 1-D column (as text vectorizers want).
    "scalar_integer_column_selection": lambda: ColumnTransformer(
        [("words", CountVectorizer(), 0), ("num", StandardScaler(), ["age"])]
    ),
    # sklearn takes any numpy dtype spec, a string included.
    "onehot_dtype_given_as_string": lambda: ColumnTransformer(
        [
            ("cat", OneHotEncoder(dtype="float32"), ["city"]),
            ("num", StandardScaler(), ["age"]),
        ]
    ),
}


@pytest.mark.parametrize("case", COMPILE_CRASHES)
def test_any_compile_failure_leaves_sklearn_serving(case):
    df, y = _city_age_frame()
    fitted = Pipeline([("pre", COMPILE_CRASHES[case]()), ("est", LogisticRegression())])
    fitted.fit(df, y)
    spec = schema.Schema(
        (
            schema.ColumnSpec("city", "string", nullable=False, domain=CITIES),
            schema.ColumnSpec("age", "int", nullable=False, min=18, max=79),
        )
    )
    served = model.with_fast_path(model.ServedModel("m", "1", fitted, spec))
    columns = validation.Validator(spec).validate({"city": ["north", "east"], "age": [30, 70]}, 2)
    got = served.predict(columns.arrays, True)
    agreement.assert_same((got.predict, got.proba), _sklearn(fitted, columns.arrays, True))


@pytest.mark.parametrize("estimator", train_estimators.ESTIMATORS)
def test_input_sklearn_refuses_is_refused_with_the_fast_path_too(estimator):
    """1e308 is a finite float the validator accepts; it overflows float32 (random forest) and,
    divided by a feature's std < 1, float64 (logistic, linear): sklearn then refuses the input."""
    fast = _served(_trained(estimator, "binary"), TYPES)
    assert fast.fast is not None
    slow = dataclasses.replace(fast, fast=None)
    row = dict(_request_rows(5)[4], share=1e308)
    for rows in ([row], [row, _request_rows(5)[4]]):
        columns = _validated(rows, TYPES)
        assert _outcome(fast, columns) == _outcome(slow, columns)


# --- verify


@pytest.mark.parametrize(
    "make, other",
    [
        (factories.classifier, {"c": 0.01}),
        (factories.classifier, {"seed": 1}),
        (factories.regressor, {"seed": 1}),
    ],
    ids=["classifier_other_c", "classifier_other_data", "regressor_other_data"],
)
def test_verify_reports_a_pipeline_that_answers_differently(make, other):
    fitted, spec, _ = make()
    different = make(**other)[0]
    compiled = fastpath.compile_pipeline(fitted)
    sets = fastpath.probes(spec)
    assert fastpath.verify(compiled, fitted, sets) is None
    problem = fastpath.verify(compiled, different, sets)
    assert problem is not None and "differ" in problem


def _unknown_handling(handle_unknown: str):
    df = factories.frame()
    names = [c.name for c in factories.feature_specs()]
    pre = ColumnTransformer(
        [
            ("num", _imputed_scaled(), ["tenure", "charges"]),
            ("cat", OneHotEncoder(handle_unknown=handle_unknown), ["plan"]),
        ]
    )
    return Pipeline([("pre", pre), ("est", LogisticRegression())]).fit(df[names], df["churned"])


@pytest.mark.parametrize(
    "compiled_from, checked_against, problem",
    [
        ("ignore", "error", "sklearn refused it but the compiled form answered"),
        ("error", "ignore", "compiled form failed where sklearn answered"),
    ],
)
def test_verify_reports_refusals_that_differ(compiled_from, checked_against, problem):
    spec = factories.classifier()[1]
    compiled = fastpath.compile_pipeline(_unknown_handling(compiled_from))
    found = fastpath.verify(compiled, _unknown_handling(checked_against), fastpath.probes(spec))
    assert found is not None and problem in found


# --- probes

PROBE_SPEC = schema.Schema(
    (
        schema.ColumnSpec("n", "int", nullable=False, min=0, max=10),
        schema.ColumnSpec("x", "float", nullable=True, min=-1.0, max=1.0),
        schema.ColumnSpec("s", "string", nullable=True, domain=("a", "b", "c")),
        schema.ColumnSpec("t", "string", nullable=False, domain=("u", "v")),
        schema.ColumnSpec("b", "bool", nullable=False),
        schema.ColumnSpec("nb", "bool", nullable=True),
        schema.ColumnSpec("y", "int", role="label", min=0, max=1),
    ),
    label="y",
)
FEATURES = PROBE_SPEC.features


def _json_values(column: np.ndarray) -> list:
    return [None if v is None or (isinstance(v, float) and v != v) else v for v in column.tolist()]


def test_probes_are_exactly_what_validation_makes_of_requests():
    validator = validation.Validator(PROBE_SPEC, validation.ValidationPolicy(check_domain=False))
    sets = fastpath.probes(PROBE_SPEC)
    assert sets
    for columns in sets:
        assert list(columns) == [c.name for c in FEATURES]
        n = len(columns["n"])
        again = validator.validate({k: _json_values(v) for k, v in columns.items()}, n).arrays
        for name, column in columns.items():
            assert column.dtype == again[name].dtype, name
            assert pd.Series(column).equals(pd.Series(again[name])), name


def test_probes_include_a_single_row_set():
    assert 1 in [len(s["n"]) for s in fastpath.probes(PROBE_SPEC)]


def test_probes_hold_nulls_only_where_the_schema_allows_them():
    sets = fastpath.probes(PROBE_SPEC)
    for col in FEATURES:
        has_null = any(pd.isna(pd.Series(s[col.name], dtype=object)).any() for s in sets)
        assert has_null == col.nullable, col.name


def test_probes_include_categories_training_never_saw():
    sets = fastpath.probes(PROBE_SPEC)
    for col in FEATURES:
        if col.dtype == "string":
            seen = {v for s in sets for v in s[col.name].tolist() if isinstance(v, str)}
            assert seen - set(col.domain), col.name


@pytest.mark.parametrize(
    "spec",
    [PROBE_SPEC, schema.Schema(factories.feature_specs())],
    ids=["probe_spec", "churn_spec"],
)
def test_probes_cover_every_known_category(spec):
    """The docstring promises every known category; one the probes skip goes unverified."""
    sets = fastpath.probes(spec)
    for col in spec.features:
        if col.dtype in ("string", "bool"):
            seen = {v for s in sets for v in s[col.name].tolist()}
            known = set(col.domain) if col.dtype == "string" else {True, False}
            assert known <= seen, (col.name, known - seen)


def test_probes_keep_unseen_categories_when_a_number_column_spans_int64():
    """An int feature up to 1e18 is valid, but 10x past it does not fit in 64 bits."""
    spec = schema.Schema(
        (
            schema.ColumnSpec("big", "int", nullable=False, min=0, max=10**18),
            schema.ColumnSpec("s", "string", nullable=False, domain=("a", "b")),
        )
    )
    seen = {v for s in fastpath.probes(spec) for v in s["s"].tolist()}
    assert seen - {"a", "b"}


@pytest.mark.parametrize("unknown_value", [np.nan, -1])
def test_text_then_ordinal_steps_encode_each_value_as_sklearn(unknown_value):
    """as_text then OrdinalEncoder(use_encoded_value), step by step against sklearn's transforms:
    strings kept, booleans as 'True'/'False', None and NaN missing, unseen and missing values
    encoded as `unknown_value` (no NaN category was fitted)."""
    from kfops import modelio
    from kfops.serving.fastpath import steps

    train = np.array([["a", True], ["b", False], ["c", True]], dtype=object)
    text = FunctionTransformer(modelio.as_text).fit(train)
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=unknown_value)
    enc.fit(text.transform(train))
    x = np.array(
        [["a", True], ["zzz", False], [None, True], [np.nan, None], ["c", False], ["b", 1]],
        dtype=object,
    )
    got_text = steps.build(text).block(x)
    want_text = text.transform(x)
    assert pd.isna(got_text).tolist() == pd.isna(want_text).tolist()
    assert got_text[~pd.isna(got_text)].tolist() == want_text[~pd.isna(want_text)].tolist()
    np.testing.assert_array_equal(steps.build(enc).block(got_text), enc.transform(want_text))
    assert x[0, 1] is True  # the request's own array is left as it was
