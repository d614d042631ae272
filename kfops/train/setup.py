"""Building blocks of the training pipeline: features, preprocessing, estimators, search spaces.

Preprocessing follows the estimator:
    hist_gradient_boosting  numeric passed through (it handles NaN natively); categorical and
                            bool columns ordinal-encoded and declared categorical, unknown or
                            missing -> NaN. No one-hot blow-up, so 1M rows stay cheap.
    logistic / linear       numeric median-imputed and standardised; categorical and bool
                            imputed with a "<missing>" category and one-hot encoded.
    random_forest           as linear, without scaling (trees do not need it).
Unknown categories at serving time never fail a request: one-hot ignores them and the ordinal
encoder maps them to "missing".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kfops import errors, features, modelio, schema

if TYPE_CHECKING:  # sklearn loads where a model is built: TrainConfig (kfops.train.core) reads
    from sklearn import compose, pipeline, preprocessing  # this module for `kfops run`'s flags

ESTIMATORS = ("hist_gradient_boosting", "logistic", "linear", "random_forest")
NUMERIC = ("int", "float")
CATEGORICAL = ("string", "bool")
# HistGradientBoosting accepts at most max_bins (255) categories per feature; rarer ones are pooled.
MAX_ORDINAL_CATEGORIES = 255
MAX_ONE_HOT_CATEGORIES = 50

_SPACES: dict[str, dict[str, list[Any]]] = {
    # No learning rate below 0.05: slower rates ran all 200 iterations and made the final fit on
    # 240k rows 5x slower than the default's, for +0.001 CV AUC on churn.
    "hist_gradient_boosting": {
        "learning_rate": [0.05, 0.1, 0.2],
        "max_leaf_nodes": [15, 31, 63],
        "min_samples_leaf": [10, 20, 50, 100],
        "l2_regularization": [0.0, 0.1, 1.0],
    },
    # Depth stays bounded: 100 unbounded trees on 1M rows would weigh gigabytes.
    "random_forest": {
        "max_depth": [6, 8, 12],
        "min_samples_leaf": [1, 5, 20],
        "max_features": ["sqrt", 0.5],
    },
    "logistic": {"C": [0.01, 0.1, 1.0, 10.0]},
    "ridge": {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0]},
}


def resolve_features(
    df: pd.DataFrame,
    data_schema: schema.Schema,
    label: str,
    feature_columns: Sequence[str] | None,
    derived: Sequence[Any] = (),
) -> tuple[list[str], dict[str, str], list[str]]:
    """The model's raw inputs, the preprocessed columns' types, and notes on columns left out.

    Types come from the schema; a column the schema does not list gets its type from the data.
    A datetime column is an input only through derived features (`kfops.features`); otherwise it
    is left out (with a note): a raw timestamp does not generalise. Derived features are checked
    against the raw inputs here, before any fit, and typed "float".

    Raises:
        ConfigError: no usable features, duplicates, the label among them, or a derived feature
            naming an unknown column, a column of the wrong type, or a raw column's name.
        SchemaViolation: a feature is absent, of the wrong type, or holds infinities.
    """
    names = list(feature_columns) if feature_columns is not None else data_schema.feature_names
    specs = features.parse_all(list(derived))
    # a derived feature's input the schema left out (a datetime: role "ignore") becomes an input
    served = set(features.model_schema(data_schema, specs).feature_names)
    extra = [c for f in specs for c in f.inputs if c in served and c not in names]
    names += list(dict.fromkeys(extra))
    if label in names:
        raise errors.ConfigError(f"label {label!r} is listed as a feature: that leaks the answer")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise errors.ConfigError(f"features listed more than once: {dupes}")
    missing = [n for n in names if n not in df.columns]
    if missing:
        detail = f"features {missing} are not among the data's columns {list(df.columns)}"
        raise errors.SchemaViolation(missing[0], "present", detail)
    declared = {name: _declared_type(data_schema, df, name) for name in names}
    features.check(specs, declared, [*df.columns, *data_schema.names])
    used = {c for f in specs for c in f.inputs}
    types, notes = {}, []
    for name, dtype in declared.items():
        if dtype == "datetime":
            if name not in used:
                notes.append(
                    f"datetime column {name!r} left out: derive features from it "
                    "(derived_features) or give it role 'time'"
                )
            continue
        _check_values(df[name], dtype)
        types[name] = dtype
    inputs = [n for n in names if n in types or n in used]
    types.update({f.name: "float" for f in specs})
    if not types:
        raise errors.ConfigError(
            f"no features to train on: the schema marks none of {data_schema.names} as role "
            "'feature' (or only datetime ones); set roles in the schema or pass feature_columns"
        )
    return inputs, types, notes


def build_pipeline(
    task: str,
    estimator: str,
    feature_types: dict[str, str],
    seed: int,
    cardinality: int = 0,
    derived: Sequence[Any] = (),
) -> pipeline.Pipeline:
    """An unfitted Pipeline([("preprocess", ColumnTransformer), ("model", estimator)]).

    `cardinality` is the most distinct values of any categorical feature: rare categories are
    pooled only when it exceeds the encoder's limit, since pooling makes fitting ~10x slower.
    With `derived` features a ("derive", DerivedFeatures) step comes first, so the fitted model
    computes them from raw inputs at serving time exactly as in training.
    """
    from sklearn import pipeline  # noqa: PLC0415 (on use: see the imports)

    kind = {"hist_gradient_boosting": "ordinal", "random_forest": "imputed"}.get(
        estimator, "scaled"
    )
    preprocess, n_numeric, n_categorical = _preprocess(feature_types, kind, cardinality)
    categorical = list(range(n_numeric, n_numeric + n_categorical)) or None
    model = _estimator(task, estimator, seed, categorical)
    steps = [("preprocess", preprocess), ("model", model)]
    if derived:
        specs = [f.to_dict() for f in features.parse_all(list(derived))]
        steps.insert(0, ("derive", features.DerivedFeatures(specs)))
    return pipeline.Pipeline(steps)


def build_baseline(task: str, feature_types: dict[str, str]) -> pipeline.Pipeline:
    """The trivial baseline (class prior or mean), taking the model's input columns.

    The Dummy never looks at X, so its preprocessing drops every column instead of encoding
    them: fitting and predicting then cost nothing per row (encoding 1M rows only to discard
    them took ~2 CPU s), while the fitted pipeline still records the inputs
    (`feature_names_in_`), which evaluate selects from the test frame as for the model.
    """
    from sklearn import compose, dummy, pipeline  # noqa: PLC0415 (on use: see the imports)

    preprocess = compose.ColumnTransformer(
        [("inputs", "drop", list(feature_types))], remainder="drop"
    )
    model = (
        dummy.DummyClassifier(strategy="prior")
        if task == "classification"
        else dummy.DummyRegressor()
    )
    return pipeline.Pipeline([("preprocess", preprocess), ("model", model)])


def candidates(estimator: str, task: str, n: int, seed: int) -> list[dict[str, Any]]:
    """Up to `n` parameter sets to try: the estimator's defaults first, then seeded samples."""
    from sklearn import model_selection  # noqa: PLC0415 (on use: see the imports)

    space = _SPACES[_space_name(estimator, task)]
    defaults = _estimator(task, estimator, seed, None).get_params()
    first = {k: defaults[k] for k in sorted(space)}
    size = math.prod(len(v) for v in space.values())
    sampler = model_selection.ParameterSampler(space, n_iter=min(n - 1, size), random_state=seed)
    rest = [dict(sorted(c.items())) for c in sampler]
    return ([first] + [c for c in rest if c != first])[:n]


def _space_name(estimator: str, task: str) -> str:
    if estimator == "linear":
        return "logistic" if task == "classification" else "ridge"
    return estimator


def _estimator(task: str, estimator: str, seed: int, categorical: list[int] | None) -> Any:
    from sklearn import ensemble, linear_model  # noqa: PLC0415 (on use: see the imports)

    classify = task == "classification"
    if estimator == "hist_gradient_boosting":
        cls = (
            ensemble.HistGradientBoostingClassifier
            if classify
            else ensemble.HistGradientBoostingRegressor
        )
        return cls(
            max_iter=200, early_stopping="auto", random_state=seed, categorical_features=categorical
        )
    if estimator == "random_forest":
        cls = ensemble.RandomForestClassifier if classify else ensemble.RandomForestRegressor
        return cls(
            n_estimators=100,
            max_depth=12,
            min_samples_leaf=5,
            max_features="sqrt",
            random_state=seed,
        )
    if classify:
        return linear_model.LogisticRegression(C=1.0, max_iter=1000)
    return linear_model.Ridge(alpha=1.0)


def _preprocess(
    feature_types: dict[str, str], kind: str, cardinality: int
) -> tuple[compose.ColumnTransformer, int, int]:
    from sklearn import compose, impute, pipeline, preprocessing  # noqa: PLC0415 (on use: see the imports)

    numeric = [n for n, t in feature_types.items() if t in NUMERIC]
    categorical = [n for n, t in feature_types.items() if t in CATEGORICAL]
    to_float = preprocessing.FunctionTransformer(modelio.as_float, feature_names_out="one-to-one")
    to_text = preprocessing.FunctionTransformer(modelio.as_text, feature_names_out="one-to-one")
    if kind == "ordinal":
        num_steps = [to_float]
        cat_steps = [to_text, _ordinal(cardinality > MAX_ORDINAL_CATEGORIES)]
    else:
        num_steps = [to_float, impute.SimpleImputer(strategy="median", keep_empty_features=True)]
        if kind == "scaled":
            num_steps.append(preprocessing.StandardScaler())
        cat_steps = [
            to_text,
            impute.SimpleImputer(strategy="constant", fill_value="<missing>"),
            _one_hot(cardinality > MAX_ONE_HOT_CATEGORIES),
        ]
    transformers = []
    if numeric:
        transformers.append(("numeric", pipeline.make_pipeline(*num_steps), numeric))
    if categorical:
        transformers.append(("categorical", pipeline.make_pipeline(*cat_steps), categorical))
    ct = compose.ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
    return ct, len(numeric), len(categorical)


def _ordinal(pool: bool) -> preprocessing.OrdinalEncoder:
    from sklearn import preprocessing  # noqa: PLC0415 (on use: see the imports)

    return preprocessing.OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        max_categories=MAX_ORDINAL_CATEGORIES if pool else None,
    )


def _one_hot(pool: bool) -> preprocessing.OneHotEncoder:
    from sklearn import preprocessing  # noqa: PLC0415 (on use: see the imports)

    return preprocessing.OneHotEncoder(
        handle_unknown="ignore",
        max_categories=MAX_ONE_HOT_CATEGORIES if pool else None,
        sparse_output=False,
    )


def _declared_type(data_schema: schema.Schema, df: pd.DataFrame, name: str) -> str:
    try:
        return data_schema.column(name).dtype
    except KeyError:
        return schema.dtype_of(df[name])


def _check_values(column: pd.Series, dtype: str) -> None:
    if dtype not in NUMERIC:
        return
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        sample = column.dropna().head(3).tolist()
        detail = f"schema says {dtype} but the data holds {column.dtype} values, e.g. {sample}"
        raise errors.SchemaViolation(str(column.name), "type", detail)
    values = column.to_numpy(dtype="float64", na_value=np.nan)
    bad = np.flatnonzero(np.isinf(values))
    if bad.size:
        detail = (
            f"{bad.size} infinite values, e.g. rows {bad[:5].tolist()}; replace them with nulls"
        )
        raise errors.SchemaViolation(str(column.name), "finite", detail)
