"""Train one scikit-learn Pipeline (preprocessing + estimator) and a Dummy baseline beside it.

The preprocessing lives inside the pipeline, so serving applies exactly the training transform.
A bounded, seeded search picks hyperparameters by cross-validation on at most `max_search_rows`
rows; the winner is then fitted once on every row. The first candidate is always the estimator's
defaults, so the search never returns something worse (on CV) than not searching. The search folds
follow the split: grouped (GroupKFold) when the split kept groups apart, in time order
(TimeSeriesSplit on rows sorted by time) when it held out the future; otherwise (stratified) KFold.
Shuffled folds there would tune on rows of the same group or from the future and pick
hyperparameters for a leak the test split does not have. The final fit runs in this process with
`n_threads` OpenMP/BLAS threads (tree-building threads for the random forest); the search spreads
HistGradientBoosting's fits over processes (see `_search`), so processes x threads never exceed
the CPUs the step may use. With fixed seeds the same data give the same model bytes at any
thread count and process count for every estimator here (tests/kfops/test_threads.py measures
it); both counts are recorded all the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import platform
from collections.abc import Iterator, Mapping, Sequence
from concurrent import futures
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import threadpoolctl

from kfops import cpus, decision, errors, jsonable, parameters, schema
from kfops import features as feature_specs
from kfops.train import setup, threshold

if TYPE_CHECKING:  # sklearn loads where a model is built or split: TrainConfig is read for
    from sklearn import pipeline  # `kfops run`'s flags without it (issue 16)

TASKS = schema.TASKS
ESTIMATORS = tuple(setup.ESTIMATORS)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What to train.

    Attributes:
        label: the label column.
        task: "classification" or "regression".
        estimator: one of ESTIMATORS; "linear" is logistic regression for classification and
            ridge regression for regression; "logistic" is classification only.
        search_iterations: candidates tried, defaults included (1 = defaults only, still CV'd).
        cv_folds: folds of the cross-validation that scores each candidate.
        seed: seeds the search sample, the folds and the estimator.
        feature_columns: the model's inputs; None takes the schema's feature columns.
        max_search_rows: the search runs on a seeded sample of at most this many rows, since
            hyperparameters found on 50k rows hold on 1M and the search then costs seconds.
        group_column: rows sharing a value stay in one search fold (set by a group split).
        time_column: search folds validate on rows later than their training rows (set by a
            time split).
        n_threads: threads of every fit (search and final); 0 = the CPUs the step may use
            (kfops.cpus: the pod's cgroup CPU limit, else the affinity mask).
        positive_class: the label value that is "positive" (binary labels); None keeps the
            last value in sorted order (1 of 0/1, True of False, "yes" of no/yes).
        threshold_objective: how the decision threshold of a binary classifier is chosen on
            out-of-fold probabilities of the search folds (kfops.train.threshold): "f1"
            maximises the positive class's F1, "none" keeps 0.5.
    """

    label: str
    task: str = "classification"
    estimator: str = parameters.field(
        "hist_gradient_boosting", "the model family", choices=ESTIMATORS
    )
    search_iterations: int = parameters.field(8, "hyperparameter candidates tried (>= 1)")
    cv_folds: int = parameters.field(3, "cross-validation folds scoring each candidate (>= 2)")
    seed: int = parameters.field(0, "seeds the search, the folds and the estimator")
    feature_columns: Sequence[str] | None = None
    max_search_rows: int = 50_000
    group_column: str | None = None
    time_column: str | None = None
    n_threads: int = parameters.field(
        0, "threads of fits and predictions; 0 = the CPUs the step may use (kfops.cpus)"
    )
    derived_features: Sequence[Any] = parameters.field(
        [], "derived features: 'name = expression' strings or JSON objects (kfops.features)"
    )
    positive_class: str | None = parameters.field(
        None, "the positive label value of a binary label; '' = the last in sorted order",
        none_as="",
    )  # fmt: skip
    threshold_objective: str = parameters.field(
        "f1", "decision threshold chosen on out-of-fold data: f1 or none (0.5)",
        choices=threshold.OBJECTIVES,
    )  # fmt: skip

    def __post_init__(self):
        if not self.label:
            raise errors.ConfigError("train: label must name a column")
        errors.check_choice("threshold_objective", self.threshold_objective, threshold.OBJECTIVES)
        if self.positive_class is not None and self.task == "regression":
            raise errors.ConfigError("positive_class is for classification labels")
        errors.check_choice("task", self.task, TASKS)
        errors.check_choice("estimator", self.estimator, ESTIMATORS)
        if self.estimator == "logistic" and self.task == "regression":
            raise errors.ConfigError("estimator 'logistic' is for classification; use 'linear'")
        _require_int("search_iterations", self.search_iterations, 1)
        _require_int("cv_folds", self.cv_folds, 2)
        errors.check_seed("seed", self.seed)
        _require_int("max_search_rows", self.max_search_rows, 10 * self.cv_folds)
        _require_int("n_threads", self.n_threads, 0)
        if self.group_column and self.time_column:
            raise errors.ConfigError("search folds are grouped or in time order, not both")
        if self.feature_columns is not None:
            if isinstance(self.feature_columns, str):
                raise errors.ConfigError("feature_columns must be a list of names, not one string")
            object.__setattr__(self, "feature_columns", tuple(self.feature_columns))
        # Checked for form now; against the data's columns and types in setup.resolve_features.
        specs = feature_specs.specs(self.derived_features)
        object.__setattr__(self, "derived_features", tuple(specs))


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """The fitted model, its baseline and what the search found.

    The two pipelines are saved with `kfops.modelio.save_model`; everything else is JSON-ready
    through `to_dict`.
    """

    pipeline: pipeline.Pipeline | None
    baseline: pipeline.Pipeline | None
    task: str
    estimator: str
    params: dict[str, Any]
    cv_score: float
    cv_metric: str
    search: list[dict[str, Any]]
    feature_names: list[str]
    feature_types: dict[str, str]
    label: str
    label_classes: list[Any] | None
    n_rows: int
    search_rows: int
    seed: int
    notes: list[str] = dataclasses.field(default_factory=list)
    folds: dict[str, Any] = dataclasses.field(default_factory=dict)
    n_threads: int = 1
    decision: dict[str, Any] = dataclasses.field(default_factory=dict)
    derived_features: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    search_processes: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Every field except the two pipelines (those are model files)."""
        fields = dataclasses.asdict(dataclasses.replace(self, pipeline=None, baseline=None))
        return {k: v for k, v in fields.items() if k not in ("pipeline", "baseline")}

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], pipeline: Any = None, baseline: Any = None
    ) -> TrainResult:
        """Inverse of `to_dict`, with the pipelines loaded separately (or None)."""
        return cls(pipeline=pipeline, baseline=baseline, **dict(data))

    def metadata(self) -> dict[str, Any]:
        """Facts for the KFP Model artifact: framework and versions, params, features, CV score."""
        import sklearn  # noqa: PLC0415 (on use: see the imports)

        return {
            "framework": "sklearn",
            "framework_version": sklearn.__version__,
            "pandas_version": pd.__version__,
            "numpy_version": np.__version__,
            "python_version": platform.python_version(),
            "task": self.task,
            "estimator": self.estimator,
            "params": self.params,
            "cv_score": self.cv_score,
            "cv_metric": self.cv_metric,
            "features": self.feature_names,
            "feature_types": self.feature_types,
            "label": self.label,
            "label_classes": self.label_classes,
            "n_rows": self.n_rows,
            "search_rows": self.search_rows,
            "seed": self.seed,
            "search_folds": self.folds.get("kind"),
            "n_threads": self.n_threads,
            "decision": self.decision,
            feature_specs.METADATA_KEY: self.derived_features,
        }


def train(df: pd.DataFrame, data_schema: schema.Schema, config: TrainConfig) -> TrainResult:
    """Searches hyperparameters, fits the winner on all rows, and fits the baseline.

    Args:
        df: the training split; extra columns are ignored.
        data_schema: gives the features (role "feature") and their types.
        config: what to train.

    Returns:
        The result, with both pipelines fitted.

    Raises:
        ConfigError: no features, or the label listed as a feature.
        SchemaViolation: a feature or the label is missing or unusable (nulls in the label, a
            single class, non-finite values, a class too small for the folds).
        DataError: too few rows.
        ModelError: the estimator fails to fit.
    """
    features, types, notes = setup.resolve_features(
        df, data_schema, config.label, config.feature_columns, config.derived_features
    )
    y, classes = _labels(df, config)
    x = df[features]
    categorical = [n for n, t in types.items() if t in setup.CATEGORICAL]
    cardinality = max((x[n].nunique() for n in categorical), default=0)
    model = setup.build_pipeline(
        config.task, config.estimator, types, config.seed, cardinality, config.derived_features
    )
    rows = _search_rows(y, config)
    folds, described = search_folds(df.iloc[rows], y[rows], config)
    n_threads = cpus.resolve(config.n_threads)
    search, processes, oof = _search(model, x.iloc[rows], y[rows], folds, config, n_threads)
    with threads(n_threads, model):
        best = max(search, key=lambda c: c["score"])
        model.set_params(**{f"model__{k}": v for k, v in best["params"].items()})
        base = setup.build_baseline(config.task, {n: types[n] for n in features if n in types})
        chosen = oof[search.index(best)] if oof else None
        rule = _decision(y[rows], chosen, classes, config, described)
        fit(model, x, y, config.estimator)
        fit(base, x, y, "baseline")
    if rule.get("threshold") is not None:
        decision.wrap(model, decision.Rule(rule["positive_class"], rule["threshold"]), x, y)
    return TrainResult(
        pipeline=model,
        baseline=base,
        task=config.task,
        estimator=config.estimator,
        params=best["params"],
        cv_score=best["score"],
        cv_metric=_scoring(config.task, classes),
        search=search,
        feature_names=features,
        feature_types=types,
        label=config.label,
        label_classes=classes,
        n_rows=len(df),
        search_rows=len(rows),
        seed=config.seed,
        notes=notes,
        folds=described,
        n_threads=n_threads,
        decision=rule,
        derived_features=list(config.derived_features),
        search_processes=processes,
    )


def _decision(
    y: np.ndarray, oof: np.ndarray | None, classes, config: TrainConfig, described
) -> dict[str, Any]:
    """The positive class and threshold (binary labels) or {} (kfops.train.threshold).

    `oof` holds the chosen candidate's out-of-fold probabilities, one column per class.
    """
    if config.task != "classification":
        return {}
    positive, why = threshold.positive_class(classes, config.positive_class, config.label)
    out: dict[str, Any] = {"positive_class": positive, "positive_rule": why}
    if len(classes) != 2:
        return {**out, "threshold": None, "note": "multiclass: labels are the most probable class"}
    scores = oof[:, classes.index(positive)]
    chosen = threshold.choose(scores, y, positive, config.threshold_objective)
    return {**out, **chosen, "validation": f"out-of-fold, {described['kind']} search folds"}


def search_folds(
    frame: pd.DataFrame, y: np.ndarray, config: TrainConfig
) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """The (train, validation) positions of each search fold, and a description of them.

    Grouped when `config.group_column` is set, time-ordered when `config.time_column` is, else
    stratified (classification) or plain KFold, shuffled with the seed. The description names
    the splitter and, per fold, its sizes and what proves it leak-free: groups shared between
    its two sides (0) or the last training time and the first validation time.

    Raises:
        SchemaViolation: the group or time column is missing or has nulls.
        DataError: fewer groups than folds, or too few rows for time-ordered folds.
    """
    from sklearn import model_selection  # noqa: PLC0415 (on use: see the imports)

    column = config.group_column or config.time_column
    if column:
        if column not in frame.columns:
            detail = f"search folds need it; the training data has {list(frame.columns)}"
            raise errors.SchemaViolation(column, "present", detail)
        if frame[column].isna().any():
            raise errors.SchemaViolation(column, "not null", "search folds cannot place nulls")
    positions = np.arange(len(frame))
    if config.group_column:
        folds, kind = _group_folds(frame[config.group_column].to_numpy(), config), "GroupKFold"
    elif config.time_column:
        folds, kind = _time_folds(frame[config.time_column].to_numpy(), config), "TimeSeriesSplit"
    elif config.task == "classification":
        splitter = model_selection.StratifiedKFold(
            config.cv_folds, shuffle=True, random_state=config.seed
        )
        folds, kind = list(splitter.split(positions, y)), "StratifiedKFold"
    else:
        splitter = model_selection.KFold(config.cv_folds, shuffle=True, random_state=config.seed)
        folds, kind = list(splitter.split(positions)), "KFold"
    return folds, {"kind": kind, "column": column, "folds": _describe_folds(frame, folds, config)}


def _group_folds(groups: np.ndarray, config: TrainConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn import model_selection  # noqa: PLC0415 (on use: see the imports)

    n_groups = pd.unique(groups).size
    if n_groups < config.cv_folds:
        raise errors.DataError(
            f"{n_groups} groups in {config.group_column!r} are too few for {config.cv_folds} "
            "grouped search folds: lower cv_folds"
        )
    splitter = model_selection.GroupKFold(config.cv_folds, shuffle=True, random_state=config.seed)
    return list(splitter.split(np.zeros(len(groups)), groups=groups))


def _time_folds(times: np.ndarray, config: TrainConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn import model_selection  # noqa: PLC0415 (on use: see the imports)

    order = np.argsort(times, kind="stable")
    splitter = model_selection.TimeSeriesSplit(config.cv_folds)
    folds = []
    try:
        for train_idx, val_idx in splitter.split(order):
            train_pos, val_pos = order[train_idx], order[val_idx]
            # A timestamp on both sides would validate on the training period: ties go to train's
            # side only if strictly earlier than every validation row.
            train_pos = train_pos[times[train_pos] < times[val_pos].min()]
            if not train_pos.size:
                raise ValueError(f"no row is earlier than {times[val_pos].min()!r}")
            folds.append((np.sort(train_pos), np.sort(val_pos)))
    except ValueError as e:
        raise errors.DataError(
            f"{len(times)} rows cannot give {config.cv_folds} time-ordered search folds "
            f"by {config.time_column!r}: {e}"
        ) from e
    return folds


def _describe_folds(
    frame: pd.DataFrame, folds: list[tuple[np.ndarray, np.ndarray]], config: TrainConfig
) -> list[dict[str, Any]]:
    out = []
    for train_pos, val_pos in folds:
        fold: dict[str, Any] = {
            "train_rows": int(train_pos.size),
            "validation_rows": int(val_pos.size),
        }
        if config.group_column:
            groups = frame[config.group_column].to_numpy()
            shared = np.intersect1d(groups[train_pos], groups[val_pos])
            fold["shared_groups"] = int(shared.size)
        if config.time_column:
            times = frame[config.time_column]
            fold["train_time_max"] = str(times.iloc[train_pos].max())
            fold["validation_time_min"] = str(times.iloc[val_pos].min())
        out.append(fold)
    return out


def _labels(df: pd.DataFrame, config: TrainConfig) -> tuple[np.ndarray, list[Any] | None]:
    if config.label not in df.columns:
        detail = f"label column not among the data's columns {list(df.columns)}"
        raise errors.SchemaViolation(config.label, "present", detail)
    if len(df) < 2 * config.cv_folds:
        raise errors.DataError(
            f"{len(df)} rows are too few to train with {config.cv_folds}-fold CV"
        )
    label = df[config.label]
    nulls = np.flatnonzero(label.isna().to_numpy())
    if nulls.size:
        detail = f"{nulls.size} rows have no label, e.g. rows {nulls[:5].tolist()}"
        raise errors.SchemaViolation(config.label, "not null", detail)
    if config.task == "regression":
        return _regression_labels(label), None
    counts = label.value_counts()
    if len(counts) < 2:
        detail = f"only one class {jsonable.plain(counts.index[0])!r}: nothing to learn"
        raise errors.SchemaViolation(config.label, "at least 2 classes", detail)
    small = counts[counts < config.cv_folds]
    if len(small):
        detail = (
            f"classes {sorted(map(str, small.index))} have fewer rows than the {config.cv_folds} "
            "CV folds: drop them, merge them, or lower cv_folds"
        )
        raise errors.SchemaViolation(config.label, "rows per class", detail)
    return label.to_numpy(), sorted(jsonable.plain(c) for c in counts.index)


def _regression_labels(label: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(label) or not pd.api.types.is_numeric_dtype(label):
        detail = f"regression needs a numeric label, got {label.dtype} e.g. {label.iloc[0]!r}"
        raise errors.SchemaViolation(label.name, "numeric", detail)
    values = label.to_numpy(dtype="float64")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        detail = f"{bad.size} non-finite labels, e.g. rows {bad[:5].tolist()}"
        raise errors.SchemaViolation(label.name, "finite", detail)
    if np.unique(values).size < 2:
        raise errors.SchemaViolation(label.name, "not constant", f"every label is {values[0]!r}")
    return values


def _search_rows(y: np.ndarray, config: TrainConfig) -> np.ndarray:
    from sklearn import model_selection  # noqa: PLC0415 (on use: see the imports)

    positions = np.arange(len(y))
    if len(y) <= config.max_search_rows:
        return positions
    stratify = y if config.task == "classification" else None
    try:
        sample, _ = model_selection.train_test_split(
            positions,
            train_size=config.max_search_rows,
            random_state=config.seed,
            stratify=stratify,
        )
    except ValueError:  # a class too rare to stratify: a plain seeded sample is still fine
        sample, _ = model_selection.train_test_split(
            positions, train_size=config.max_search_rows, random_state=config.seed
        )
    return np.sort(sample)


def _search(
    model: pipeline.Pipeline,
    x: pd.DataFrame,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    config: TrainConfig,
    n_threads: int,
) -> tuple[list[dict], int, list[np.ndarray]]:
    """Each candidate's CV score, in candidate order; the processes used; out-of-fold probabilities.

    Every (candidate, fold) fit is one job, as in GridSearchCV (clone, set the candidate, fit on
    the fold's training rows, score its validation rows; mean and population std over folds).
    For a binary label each fit's validation probabilities are kept (one column per class, NaN
    where no fold scored a row) and ROC AUC is computed from them, so the decision threshold
    reuses the chosen candidate's fits instead of fitting its folds again. (sklearn's roc_auc
    scorer ranks decision_function where there is one; its sigmoid is monotone, so the AUC is
    the same.) Other labels keep the sklearn scorer and no probabilities.

    HistGradientBoosting's threads share out one fit's histograms, which on a search sample of a
    few thousand rows is far from twice as fast on two; whole fits in separate processes are
    (kfops.cpus.share: processes x threads <= n_threads). Forests already build their trees on
    n_jobs threads, and linear fits are too short to pay for starting processes. Each fit is
    seeded, so the scores, and the winner, are the same whichever process ran it (`_run_fits`
    says how the processes start).
    """
    candidates = setup.candidates(
        config.estimator, config.task, config.search_iterations, config.seed
    )
    classification = config.task == "classification"
    classes = sorted(jsonable.plain(c) for c in np.unique(y)) if classification else None
    binary = classes is not None and len(classes) == 2
    workers, each = 1, n_threads
    if config.estimator == "hist_gradient_boosting":
        workers, each = cpus.share(n_threads, len(candidates) * len(folds))
    scoring = _scoring(config.task, classes)
    jobs = [(model, c, x, y, fold, scoring, classes if binary else None)
            for c in candidates for fold in folds]  # fmt: skip
    try:
        done = _run_fits(jobs, workers, each, model)
    except ValueError as e:
        raise errors.ModelError(
            f"{config.estimator} failed during the hyperparameter search: {e}"
        ) from e
    scores = np.array([score for score, _ in done]).reshape(len(candidates), len(folds))
    means = np.average(scores, axis=1)
    stds = np.sqrt(np.average((scores - means[:, np.newaxis]) ** 2, axis=1))
    scored = [
        {"params": dict(c), "score": float(m), "std": float(s)}
        for c, m, s in zip(candidates, means, stds, strict=True)
    ]
    oof = []
    if binary:
        for i in range(len(candidates)):
            kept = np.full((len(y), len(classes)), np.nan)
            for (_, val_pos), (_, proba) in zip(
                folds, done[i * len(folds) : (i + 1) * len(folds)], strict=True
            ):
                if proba is not None:
                    kept[val_pos] = proba
            oof.append(kept)
    return scored, workers, oof


# The search's jobs while forked workers run them: inherited by fork, never pickled.
_FORKED_JOBS: list[tuple] = []


def _run_fits(
    jobs: list[tuple], workers: int, each: int, model: pipeline.Pipeline
) -> list[tuple[float, np.ndarray | None]]:
    """`_fit_fold(*job)` for every job, in order: here, or in `workers` processes of `each` threads.

    One-thread workers are forked from this process, which has scikit-learn loaded and the
    rows in memory: a worker starts in milliseconds and only its results travel back. A fresh
    interpreter (loky, joblib's default) would first import scikit-learn again, ~1.3-2 CPU s
    per worker, as long as half the search at 5,000 rows. Forked workers must stay on one
    OpenMP thread: GNU libgomp's thread pool does not survive fork, and a child that opens a
    parallel region of 2+ threads after the parent ran one hangs (tried here with the
    libgomp scikit-learn bundles: a 2-thread fit in a forked child never returned, a 1-thread
    fit did). So workers of 2+ threads (fewer fits than CPUs) start fresh through loky, as
    does everything but Linux: macOS has fork, but its system libraries (Accelerate, which
    numpy's wheels use there; libdispatch) are not fork-safe, which is why CPython's default
    there is spawn since 3.8. Worker CPU is the parent's RUSAGE_CHILDREN.
    """
    if workers == 1:
        with threads(each, model):
            return [_fit_fold(*job) for job in jobs]
    if each > 1 or platform.system() != "Linux":
        from sklearn.utils import parallel  # delayed() carries sklearn's config into the workers

        with threads(each, model), cpus.processes(each):
            return parallel.Parallel(n_jobs=workers)(parallel.delayed(_fit_fold)(*j) for j in jobs)
    _FORKED_JOBS[:] = jobs
    try:
        # set before the fork, so the workers inherit it, and in each worker for certain
        with (
            threads(1, model),
            futures.ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("fork"), initializer=_one_thread
            ) as pool,
        ):
            return list(pool.map(_forked_fit, range(len(jobs))))
    except futures.process.BrokenProcessPool as e:
        raise errors.ModelError(
            f"a search worker process died ({e}); out of memory? lower n_threads"
        ) from e
    finally:
        _FORKED_JOBS.clear()


_LIMITS: list[Any] = []  # a forked worker's thread limit, kept for the worker's life


def _one_thread() -> None:
    _LIMITS.append(threadpoolctl.threadpool_limits(1))


def _forked_fit(index: int) -> tuple[float, np.ndarray | None]:
    return _fit_fold(*_FORKED_JOBS[index])


def _fit_fold(
    model: pipeline.Pipeline,
    params: dict[str, Any],
    x: pd.DataFrame,
    y: np.ndarray,
    fold: tuple[np.ndarray, np.ndarray],
    scoring: str,
    classes: list[Any] | None,
) -> tuple[float, np.ndarray | None]:
    """One search fit: (validation score, validation probabilities per class of `classes`).

    With `classes` (a binary label) ROC AUC is computed from predict_proba, the column of the
    last class being positive as in sklearn's scorer; a fold whose training rows lack a class is
    scored by sklearn's scorer (which refuses it, as GridSearchCV did) and leaves no
    probabilities. Without `classes`, sklearn's scorer and no probabilities.
    """
    from sklearn import base, metrics

    train_pos, val_pos = fold
    fitted = base.clone(model).set_params(**{f"model__{k}": v for k, v in params.items()})
    fitted.fit(x.iloc[train_pos], y[train_pos])
    x_val, y_val = x.iloc[val_pos], y[val_pos]
    if classes is None or len(fitted.classes_) != len(classes):
        return float(metrics.get_scorer(scoring)(fitted, x_val, y_val)), None
    proba = fitted.predict_proba(x_val)
    return float(metrics.roc_auc_score(y_val, proba[:, -1])), proba


def _scoring(task: str, classes: list[Any] | None) -> str:
    if task == "regression":
        return "r2"
    return "roc_auc" if len(classes or ()) == 2 else "neg_log_loss"


def fit(model: pipeline.Pipeline, x: pd.DataFrame, y: np.ndarray, name: str) -> None:
    """Fits `model` (under the caller's `threads`) so that its bytes do not name the count.

    HistGradientBoosting keeps the fit's OpenMP thread count on its bin mapper
    (sklearn/ensemble/_hist_gradient_boosting/binning.py, `_BinMapper.n_threads`), used only by
    `transform` while fitting; prediction asks OpenMP afresh. Put back to the constructor's
    None, the same data and seed give the same model bytes at any thread count.

    Raises:
        ModelError: the estimator fails to fit.
    """
    try:
        model.fit(x, y)
    except ValueError as e:
        raise errors.ModelError(f"{name} failed to fit on {len(x)} rows: {e}") from e
    binner = getattr(model.steps[-1][1], "_bin_mapper", None)
    if binner is not None:
        binner.n_threads = None


@contextlib.contextmanager
def threads(n: int, model: pipeline.Pipeline) -> Iterator[None]:
    """`n` threads for OpenMP/BLAS (HistGradientBoosting, lbfgs) and for n_jobs (forests).

    n_jobs goes back to None on exit, so the saved model carries no thread count into serving.

    Not joblib.parallel_config: that would also send the ColumnTransformer's per-column fits to
    worker processes (slower, and the model's bytes then change with the count).
    """
    from sklearn import ensemble  # noqa: PLC0415 (on use: see the imports)

    estimator = model.steps[-1][1]
    forests = (ensemble.RandomForestClassifier, ensemble.RandomForestRegressor)
    jobs = isinstance(estimator, forests)  # LogisticRegression's n_jobs does nothing since 1.8
    if jobs:
        estimator.set_params(n_jobs=n)
    try:
        with threadpoolctl.threadpool_limits(n):
            yield
    finally:
        if jobs:
            estimator.set_params(n_jobs=None)


def _require_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise errors.ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
