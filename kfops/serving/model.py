"""What the server serves, and where it comes from.

A `ServedModel` is one immutable (name, version, sklearn pipeline, schema). The server never
mutates it: a new version is a new object swapped in whole (see `manager`). A `ModelSource` is the
seam between the server and model storage: the registry in production, a directory (the
infra-validate path, or a KServe storageUri mount), or memory in unit tests.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import statistics
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn import base as sk_base

from kfops import dataio, errors, modelio, schema
from kfops.registry import MANIFEST_FILE, MODEL_FILE, SCHEMA_FILE
from kfops.serving import errors as serr
from kfops.serving import fastpath

PREDICT, PREDICT_PROBA = "predict", "predict_proba"
# Which path answered a prediction (`Prediction.path`, counted in kfops_fast_path_predictions).
FAST, FALLBACK, SKLEARN = "fast", "fallback", "sklearn"
log = logging.getLogger("kfops.serving")


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Model outputs for a batch: labels/values, and class probabilities when asked.

    `path` says who answered: FAST (compiled), FALLBACK (sklearn after the compiled path
    raised) or SKLEARN (no compiled path for this model or input).
    """

    predict: np.ndarray
    proba: np.ndarray | None = None
    path: str = SKLEARN


@dataclasses.dataclass(frozen=True, eq=False)
class ServedModel:
    """One loaded model version; immutable, shared by every request that started on it.

    Attributes:
        name: model name in the URL paths.
        version: registry version string.
        pipeline: fitted sklearn estimator (normally a Pipeline: preprocessing + estimator).
        schema: the data contract; requests carry exactly `schema.features`.
        task: "classification" or "regression" (from the schema, else from the estimator).
        classes: class labels in predict_proba column order (classifiers), else None.
        fast: the pipeline compiled to numpy and verified against it (see `with_fast_path`).
        fast_note: whether and why (not) the fast path is used, for logs and metadata.
        fast_cost: the fast path's measured seconds: one row; a batch's fixed part, per row.
    """

    name: str
    version: str
    pipeline: Any
    schema: schema.Schema
    task: str = ""
    classes: tuple[Any, ...] | None = None
    fast: fastpath.CompiledPipeline | None = None
    fast_note: str = ""
    fast_cost: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        if not self.schema.features:
            raise errors.ModelError(f"model {self.name!r}: its schema has no feature columns")
        task = self.task or self.schema.task
        if not task:
            task = "classification" if sk_base.is_classifier(self.pipeline) else "regression"
        object.__setattr__(self, "task", task)
        classes = getattr(self.pipeline, "classes_", None) if task == "classification" else None
        if classes is not None:
            object.__setattr__(self, "classes", tuple(np.asarray(classes).tolist()))

    def fast_seconds(self, rows: int) -> float:
        """Estimated fast-path predict time for `rows` rows (infinite without a fast path)."""
        if self.fast is None:
            return math.inf
        one, fixed, per_row = self.fast_cost
        return one if rows == 1 else fixed + per_row * rows

    @functools.cached_property
    def has_proba(self) -> bool:
        """Whether the model can answer predict_proba (cached: sklearn's check is not free)."""
        return self.classes is not None and hasattr(self.pipeline, "predict_proba")

    @functools.cached_property
    def output_names(self) -> tuple[str, ...]:
        """The V2 output tensors this model offers."""
        return (PREDICT, PREDICT_PROBA) if self.has_proba else (PREDICT,)

    def predict(
        self, columns: Mapping[str, np.ndarray] | pd.DataFrame, want_proba: bool
    ) -> Prediction:
        """Predicts validated columns; preprocessing runs once even when probabilities are asked.

        Named numpy columns go through the compiled fast path when the model has one; anything
        that path cannot answer (and any DataFrame) goes to the sklearn pipeline itself.

        Raises:
            ModelRejectedInput: the estimator refused values the schema allowed (ValueError).
            ModelError: any other failure inside the model.
        """
        want_proba = want_proba and self.has_proba
        path = SKLEARN
        if self.fast is not None and not isinstance(columns, pd.DataFrame):
            try:
                labels, proba = self.fast.predict(columns, want_proba)
                return Prediction(np.asarray(labels), proba, FAST)
            except Exception as e:  # noqa: BLE001 (sklearn below answers, or names the error)
                path = FALLBACK
                self._first_fallback(e)
        frame = columns if isinstance(columns, pd.DataFrame) else pd.DataFrame(columns, copy=False)
        try:
            if not want_proba:
                return Prediction(np.asarray(self.pipeline.predict(frame)), None, path)
            # Transform once, then ask the final estimator twice. Iterating the steps avoids
            # `pipeline[:-1]`, which builds a new Pipeline per call and measured ~2x slower.
            features, final = frame, self.pipeline
            steps = getattr(self.pipeline, "steps", None)
            if steps:
                for _, step in steps[:-1]:
                    if step is not None and step != "passthrough":
                        features = step.transform(features)
                final = steps[-1][1]
            labels, proba = final.predict(features), final.predict_proba(features)
            return Prediction(np.asarray(labels), proba, path)
        except (ValueError, TypeError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise serr.ModelRejectedInput(f"the model rejected the input: {first_line}") from e
        except Exception as e:
            raise errors.ModelError(f"model {self.name!r} v{self.version} failed: {e}") from e

    def _first_fallback(self, exc: Exception) -> None:
        """Logs the first fast-path failure of this model version, with its traceback.

        Later ones are only counted (kfops_fast_path_predictions_total{outcome="fallback"}), so
        a compiled form that fails on every request does not flood the log. dict.setdefault is
        atomic, so the event loop and the batcher's thread cannot both log the first one.
        """
        if self.__dict__.setdefault("_fallback", exc) is exc:
            log.warning(
                "fast path failed; scikit-learn answers instead (logged once per model version)",
                extra={"model": self.name, "version": self.version, "error": repr(exc)},
                exc_info=exc,
            )


def with_fast_path(served: ServedModel) -> ServedModel:
    """The same model with its pipeline compiled to numpy, if that form is verified to agree.

    Otherwise the model comes back without one (sklearn serves it) and `fast_note` says why.
    """
    try:
        fast, note, cost = _compile(served)
    except fastpath.Unsupported as e:
        fast, note, cost = None, f"not compiled: {e}", (0.0, 0.0, 0.0)
    except Exception as e:  # noqa: BLE001 (a step the compiler misreads must not block serving)
        fast, note, cost = None, f"not compiled: {type(e).__name__}: {e}", (0.0, 0.0, 0.0)
    return dataclasses.replace(served, fast=fast, fast_note=note, fast_cost=cost)


def _compile(served: ServedModel):
    """(compiled form or None, note, measured cost) for a served model."""
    fast = fastpath.compile_pipeline(served.pipeline)
    sets = fastpath.probes(served.schema)
    problem = fastpath.verify(fast, served.pipeline, sets) if sets else "no probe rows"
    if problem:
        return None, f"compiled form disagrees with sklearn, not used: {problem}", (0.0, 0.0, 0.0)
    cost = _cost(fast, sets[0], served.has_proba)
    rows = sum(len(next(iter(s.values()))) for s in sets)
    return fast, f"compiled, verified on {rows} rows; one row in {cost[0] * 1e6:.0f} us", cost


def _cost(fast, columns: dict, want_proba: bool) -> tuple[float, float, float]:
    """Seconds for one row; a batch's fixed part and per-row part (from 8 and 128 rows)."""
    one, small, big = (_timed(fast, _resized(columns, n), want_proba) for n in (1, 8, 128))
    per_row = max(big - small, 0.0) / 120
    return one, max(small - 8 * per_row, 0.0), per_row


def _resized(columns: dict, n: int) -> dict:
    """The probe columns cycled or cut to exactly n rows."""
    return {k: np.resize(v, n) for k, v in columns.items()}


def _timed(fast, columns: dict, want_proba: bool, repeat: int = 5) -> float:
    """Median seconds of a compiled predict (the first call warms up)."""
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        fast.predict(columns, want_proba)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def example_frame(spec: schema.Schema, n: int = 1) -> pd.DataFrame:
    """A valid input frame built from the schema alone (used to warm up a freshly loaded model)."""
    data = {}
    for col in spec.features:
        if col.dtype in ("int", "float"):
            lo = col.min if col.min is not None else 0
            value = lo if col.max is None else (lo + col.max) / 2
            data[col.name] = [int(value) if col.dtype == "int" else float(value)] * n
        elif col.dtype == "bool":
            data[col.name] = [False] * n
        elif col.dtype == "datetime":
            data[col.name] = pd.to_datetime(["1970-01-01"] * n)
        else:
            data[col.name] = np.array([col.domain[0] if col.domain else ""] * n, dtype=object)
    return pd.DataFrame(data)


class ModelSource(Protocol):
    """Where models come from. Implementations must be safe to call from a background thread."""

    def champion(self, name: str) -> str | None:
        """The version the server should serve when none is pinned (None: nothing promoted)."""

    def load(self, name: str, version: str | None) -> ServedModel:
        """Loads one version (the champion when version is None).

        Raises:
            NotFound: no such model or version.
            IntegrityError: stored bytes do not match their sha256.
        """


class MemorySource:
    """Models held in memory: the seam unit tests use to serve a pipeline they just fitted."""

    def __init__(self):
        self._models: dict[tuple[str, str], tuple[Any, schema.Schema]] = {}
        self._champions: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, name: str, pipeline: Any, spec: schema.Schema, version: str, promote=True):
        """Registers a fitted pipeline under (name, version); promotes it by default."""
        with self._lock:
            self._models[(name, version)] = (pipeline, spec)
            if promote:
                self._champions[name] = version

    def champion(self, name: str) -> str | None:
        """The promoted version of a model."""
        with self._lock:
            return self._champions.get(name)

    def load(self, name: str, version: str | None) -> ServedModel:
        """Returns the registered pipeline as a ServedModel."""
        version = version or self.champion(name)
        with self._lock:
            found = self._models.get((name, version or ""))
        if found is None:
            raise serr.ModelNotFound(f"no model {name!r} version {version!r}")
        return ServedModel(name, version, found[0], found[1])


class DirectorySource:
    """A model in a directory: model.joblib + schema.json (+ optional manifest.json with sha256).

    This is what infra-validate loads a candidate from, and what a KServe storageUri mount holds.
    The version comes from the manifest when present, else `default_version`.
    """

    def __init__(self, path: str | os.PathLike, default_version: str = "0"):
        self.path = Path(path)
        self.default_version = default_version

    def champion(self, name: str) -> str | None:
        """A directory holds exactly one version."""
        return self._manifest().get("version", self.default_version)

    def load(self, name: str, version: str | None) -> ServedModel:
        """Verifies sha256 (when a manifest lists it) then unpickles, as the registry does."""
        manifest = self._manifest()
        current = str(manifest.get("version", self.default_version))
        if version not in (None, current):
            raise serr.ModelNotFound(f"{self.path} holds version {current!r}, not {version!r}")
        files = manifest.get("files", {})
        schema_sha = files.get(SCHEMA_FILE, {}).get("sha256")
        if schema_sha and dataio.sha256_file(self.path / SCHEMA_FILE) != schema_sha:
            raise errors.IntegrityError(
                f"{self.path / SCHEMA_FILE}: sha256 does not match the manifest"
            )
        pipeline = modelio.load_model(
            self.path / MODEL_FILE, files.get(MODEL_FILE, {}).get("sha256")
        )
        return ServedModel(name, current, pipeline, schema.Schema.load(self.path / SCHEMA_FILE))

    def _manifest(self) -> dict:
        path = self.path / MANIFEST_FILE
        return dataio.read_json(path) if path.is_file() else {}


class RegistrySource:
    """Models from `kfops.registry.Registry` (champion pointer, sha256-verified loads)."""

    def __init__(self, registry: Any):
        self.registry = registry

    def champion(self, name: str) -> str | None:
        """The registry's champion pointer."""
        return self.registry.champion(name)

    def load(self, name: str, version: str | None) -> ServedModel:
        """Loads via the registry, which verifies every sha256 before unpickling."""
        loaded = self.registry.load(name, version)
        return ServedModel(loaded.name, str(loaded.version), loaded.pipeline, loaded.schema)


def open_source(store, model_dir: str | os.PathLike | None) -> ModelSource:
    """The source `kfops serve` uses: a model directory when given, else the registry in `store`.

    Raises:
        ConfigError: neither a store nor a model directory.
    """
    if model_dir:
        return DirectorySource(model_dir)
    if store is None:
        raise errors.ConfigError("serve needs --store (registry) or --model-dir")
    from kfops import registry  # noqa: PLC0415 (the registry is only needed on this path)

    return RegistrySource(registry.Registry(store))
