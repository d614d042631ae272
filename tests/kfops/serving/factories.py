"""Tiny fitted models and their schemas, made inline: a classifier and a regressor."""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from kfops import schema

PLANS = ("basic", "plus", "pro")


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Features: tenure (int, 0..72), charges (float, nullable), plan (category), promo (bool)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "tenure": rng.integers(0, 73, n),
            "charges": rng.uniform(20, 120, n).round(2),
            "plan": rng.choice(PLANS, n),
            "promo": rng.random(n) < 0.3,
        }
    )
    df["churned"] = ((df.tenure < 20) & (df.charges > 60)).astype(int)
    df["spend"] = df.tenure * df.charges / 10 + rng.normal(0, 5, n)
    return df


def feature_specs() -> tuple[schema.ColumnSpec, ...]:
    return (
        schema.ColumnSpec("tenure", "int", nullable=False, min=0, max=72),
        schema.ColumnSpec("charges", "float", nullable=True, min=20.0, max=120.0),
        schema.ColumnSpec("plan", "string", nullable=False, domain=PLANS),
        schema.ColumnSpec("promo", "bool", nullable=False),
    )


def _preprocess() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["tenure", "charges"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
            ("flag", "passthrough", ["promo"]),
        ]
    )


def classifier(seed: int = 0, c: float = 1.0):
    """(pipeline, schema, frame) for churn classification; `c` changes the fit (a 'new version')."""
    df = frame(seed=seed)
    spec = schema.Schema(
        (*feature_specs(), schema.ColumnSpec("churned", "int", role="label", min=0, max=1)),
        label="churned",
        task="classification",
        label_classes=(0, 1),
    )
    pipe = Pipeline([("pre", _preprocess()), ("est", LogisticRegression(C=c))])
    pipe.fit(df[spec.feature_names], df["churned"])
    return pipe, spec, df


def trees(kind: str, seed: int = 0, task: str = "classification"):
    """(pipeline, schema, frame) for churn (or spend) by HistGradientBoosting or a forest.

    Both are served through the micro-batcher (their compiled predict is too slow to go inline).
    """
    from sklearn import ensemble

    pipe, spec, df = classifier(seed) if task == "classification" else regressor(seed)
    suffix = "Classifier" if task == "classification" else "Regressor"
    est = {
        "hist_gradient_boosting": lambda: getattr(ensemble, "HistGradientBoosting" + suffix)(
            max_iter=30, random_state=seed
        ),
        "random_forest": lambda: getattr(ensemble, "RandomForest" + suffix)(30, random_state=seed),
    }[kind]()
    pipe = Pipeline([("pre", _preprocess()), ("est", est)])
    pipe.fit(df[spec.feature_names], df[spec.label])
    return pipe, spec, df


SLOW_SECONDS_ENV, SLOW_MARKER_ENV = "KFOPS_TEST_PREDICT_SECONDS", "KFOPS_TEST_PREDICT_MARKER"


def _slow_identity(frame):
    """Sleeps on batches of 3+ rows when the process has KFOPS_TEST_PREDICT_SECONDS set.

    Warm-up (one row) and fitting in the test process stay fast; before sleeping it drops a
    file in KFOPS_TEST_PREDICT_MARKER, so a test knows the request reached the model.
    """
    import os
    import time
    import uuid
    from pathlib import Path

    seconds = float(os.environ.get(SLOW_SECONDS_ENV, "0"))
    if seconds and len(frame) >= 3:
        Path(os.environ[SLOW_MARKER_ENV], uuid.uuid4().hex).touch()
        time.sleep(seconds)
    return frame


def slow_classifier():
    """(pipeline, schema, frame): `classifier()` behind a step that sleeps (see _slow_identity).

    Picklable by reference, so a server process loads it from the registry.
    """
    from sklearn.preprocessing import FunctionTransformer

    pipe, spec, df = classifier()
    slow = Pipeline([("slow", FunctionTransformer(_slow_identity)), *pipe.steps])
    slow.fit(df[spec.feature_names], df["churned"])
    return slow, spec, df


def regressor(seed: int = 0):
    """(pipeline, schema, frame) for spend regression."""
    df = frame(seed=seed)
    spec = schema.Schema(
        (
            *feature_specs(),
            schema.ColumnSpec("spend", "float", role="label", min=-50.0, max=1000.0),
        ),
        label="spend",
        task="regression",
    )
    pipe = Pipeline([("pre", _preprocess()), ("est", Ridge())])
    pipe.fit(df[spec.feature_names], df["spend"])
    return pipe, spec, df


def instances(df: pd.DataFrame, n: int, start: int = 0) -> list[dict]:
    """Rows as V1 instance objects with plain JSON types."""
    cols = [c.name for c in feature_specs()]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in df[cols].iloc[start : start + n].to_dict("records")
    ]


def v2_inputs(rows: list[dict]) -> list[dict]:
    """V2 named inputs (one tensor per feature) for the same rows."""
    types = {"tenure": "INT64", "charges": "FP64", "plan": "BYTES", "promo": "BOOL"}
    return [
        {"name": name, "shape": [len(rows)], "datatype": dtype, "data": [r[name] for r in rows]}
        for name, dtype in types.items()
    ]


def publish(registry, name, pipeline, spec, workdir, promote=True) -> str:
    """Registers a fitted pipeline + schema in a kfops registry (optionally promoting it)."""
    import tempfile
    from pathlib import Path

    from kfops import modelio

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        model_path, schema_path = Path(tmp, "model.joblib"), Path(tmp, "schema.json")
        modelio.save_model(pipeline, model_path)
        spec.save(schema_path)
        version = registry.register(
            name, {"model.joblib": model_path, "schema.json": schema_path}, {}
        ).version
    if promote:
        registry.promote(name, version)
    return version
