"""Prometheus metrics, one registry per app (so tests and infra-validate can build many apps).

Per-request metrics use prometheus_client; the prediction distribution is a custom collector
updated with one vectorised step per batch (numpy bincount), not one `observe()` per row.
"""

from __future__ import annotations

import collections
import functools
import threading

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from kfops.serving import model

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
_SMALL = 32
_FEW_CLASSES = 16  # up to this many classes, counted one comparison each
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Every metric the server exports."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = ["endpoint", "method", "status"]
        self._requests = Counter("kfops_requests", "HTTP requests.", labels, registry=r)
        self._latency = Histogram(
            "kfops_request_duration_seconds",
            "Request latency.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._batch = Histogram(
            "kfops_batch_rows",
            "Rows per inference request.",
            ["protocol"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self._call_rows = Histogram(
            "kfops_predict_call_rows",
            "Rows per model predict call (a micro-batch may join several requests).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self._call_requests = Histogram(
            "kfops_predict_call_requests",
            "Requests joined into one model predict call by micro-batching.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.model_info = Gauge(
            "kfops_model_info",
            "1 for the model version being served; fast_path says whether its pipeline is served "
            "compiled to numpy (true) or by scikit-learn (false).",
            ["model", "version", "fast_path"],
            registry=r,
        )
        self.fast_path = Counter(
            "kfops_fast_path_predictions",
            "Inference requests of a model with a compiled fast path, by who answered: the "
            "compiled path (fast) or scikit-learn after the compiled path raised (fallback).",
            ["model", "outcome"],
            registry=r,
        )
        self._path_children: dict[tuple[str, str], object] = {}
        self.model_loads = Counter(
            "kfops_model_loads", "Model versions swapped in.", ["model"], registry=r
        )
        self.log_rows = Counter(
            "kfops_inference_log_rows", "Inference log rows by outcome.", ["outcome"], registry=r
        )
        self.log_files = Counter(
            "kfops_inference_log_files", "Inference log files written.", registry=r
        )
        self.out_of_range = Counter(
            "kfops_out_of_range_values",
            "Feature values outside the training [min, max] recorded in the schema.",
            ["model", "feature", "side"],
            registry=r,
        )
        self.shadow = Counter(
            "kfops_shadow_requests",
            "Requests handed to a shadow challenger, by outcome: answered, failed (it raised), "
            "dropped (its process's pipe or its event buffer was full: not in the evidence; the "
            "champion never waits for it) or off "
            "(its process exited; shadow is off until the process is restarted).",
            ["outcome"],
            registry=r,
        )
        # Every outcome exported from the start: increase() cannot see a series' first count.
        for outcome in ("answered", "failed", "dropped", "off"):
            self.shadow.labels(outcome)
        self.shadow_restarts = Counter(
            "kfops_shadow_restarts",
            "Shadow challenger processes started again after the previous one exited.",
            registry=r,
        )
        self.predictions = PredictionCollector()
        r.register(self.predictions)
        self._children: dict[tuple, tuple] = {}
        self._batch_children: dict[str, object] = {}

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Counts one request and its latency (label children cached: this is the hot path)."""
        key = (endpoint, method, status)
        child = self._children.get(key)
        if child is None:
            child = (self._requests.labels(*key), self._latency.labels(*key))
            self._children[key] = child
        child[0].inc()
        child[1].observe(seconds)

    def observe_batch(self, protocol: str, rows: int) -> None:
        """Records one batch size."""
        child = self._batch_children.get(protocol)
        if child is None:
            child = self._batch_children[protocol] = self._batch.labels(protocol)
        child.observe(rows)

    def observe_predict_call(self, requests: int, rows: int) -> None:
        """Records one model predict call: how many requests it joined and how many rows."""
        self._call_requests.observe(requests)
        self._call_rows.observe(rows)

    def observe_path(self, model_name: str, path: str) -> None:
        """Counts which path answered one request (requests sklearn alone serves are not)."""
        if path == model.SKLEARN:
            return
        key = (model_name, path)
        child = self._path_children.get(key)
        if child is None:
            child = self._path_children[key] = self.fast_path.labels(*key)
        child.inc()

    def observe_out_of_range(self, model_name: str, counts: dict[str, tuple[int, int]]) -> None:
        """Counts a request's values below the training min and above the training max."""
        for feature, (below, above) in counts.items():
            if below:
                self.out_of_range.labels(model_name, feature, "below").inc(below)
            if above:
                self.out_of_range.labels(model_name, feature, "above").inc(above)

    def observe_predictions(self, served: model.ServedModel, predict) -> None:
        """Adds a batch of predictions to the distribution."""
        self.predictions.add(served, predict)

    def swapped(self, old, new) -> None:
        """Moves the version info gauge to the new version."""
        if old is not None:
            self.model_info.remove(old.model.name, old.model.version, _fast(old.model))
        self.model_info.labels(new.model.name, new.model.version, _fast(new.model)).set(1)
        if new.model.fast is not None:  # both series exist from the start, at 0
            for outcome in (model.FAST, model.FALLBACK):
                self.fast_path.labels(new.model.name, outcome)
        self.model_loads.labels(new.model.name).inc()

    def log_outcome(self, outcome: str, rows: int) -> None:
        """Counts inference log rows queued, written or dropped (and files written)."""
        self.log_rows.labels(outcome).inc(rows)
        if outcome == "written":
            self.log_files.inc()

    def observe_shadow(self, outcome: str, n: int = 1) -> None:
        """Counts requests handed to the shadow challenger (kfops.serving.challenger)."""
        self.shadow.labels(outcome).inc(n)

    def observe_shadow_restart(self) -> None:
        """Counts one replaced shadow child (kfops.serving.challenger backs off between them)."""
        self.shadow_restarts.inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class PredictionCollector:
    """Prediction distribution per model version: class counts, or a histogram of values."""

    def __init__(self):
        self._lock = threading.Lock()
        self._classes: dict[tuple[str, str, str], float] = {}
        self._hist: dict[tuple[str, str], list] = {}

    def add(self, served: model.ServedModel, predict: np.ndarray) -> None:
        """Counts a batch in one vectorised step."""
        if served.classes is not None:
            # Few rows (the usual request) are cheaper to count in Python than with np.unique.
            if len(predict) <= _SMALL:
                counted = collections.Counter(predict.tolist()).items()
            else:
                counted = _class_counts(predict, served.classes)
            with self._lock:
                for value, count in counted:
                    key = (served.name, served.version, value)
                    self._classes[key] = self._classes.get(key, 0) + count
            return
        key = (served.name, served.version)
        state = self._hist.get(key)
        edges = state[0] if state is not None else _edges(served)  # once per model version
        finite = predict[np.isfinite(predict)].astype(np.float64)
        counts = np.bincount(np.searchsorted(edges, finite, side="left"), minlength=len(edges) + 1)
        with self._lock:
            state = self._hist.setdefault(key, [edges, np.zeros_like(counts), 0.0])
            state[1] += counts
            state[2] += float(finite.sum())

    def collect(self):
        """Yields the metric families (called by the registry on scrape)."""
        with self._lock:
            classes = dict(self._classes)
            hists = {k: (v[0], v[1].copy(), v[2]) for k, v in self._hist.items()}
        family = CounterMetricFamily(
            "kfops_predictions", "Predicted classes.", labels=["model", "version", "class"]
        )
        for (name, version, value), count in sorted(
            classes.items(), key=lambda kv: (kv[0][:2], str(kv[0][2]))
        ):
            family.add_metric([name, version, str(value)], count)
        yield family
        values = HistogramMetricFamily(
            "kfops_prediction_value", "Regression predictions.", labels=["model", "version"]
        )
        for key, (edges, counts, total) in sorted(hists.items()):
            cumulative = np.cumsum(counts).tolist()
            buckets = [(_fmt(e), c) for e, c in zip(edges.tolist(), cumulative, strict=False)]
            buckets.append(("+Inf", cumulative[-1]))
            values.add_metric(list(key), buckets, total)
        yield values


def _class_counts(predict: np.ndarray, classes: tuple) -> list[tuple]:
    """(label, count) per predicted class: one comparison per known class when there are few.

    np.unique sorts the batch: 100 rows of 2 classes cost ~10 us that way, ~5 us this way.
    Labels come as `predict.tolist()` gives them, so a class is one key whatever the request's
    size. A label outside `classes` (or classes not of predict's type) falls back to np.unique.
    """
    labels = _labels(classes, predict.dtype) if len(classes) <= _FEW_CLASSES else None
    if labels is not None:
        counts = [int(np.count_nonzero(predict == label)) for label in labels]
        if sum(counts) == len(predict):
            return [(v, n) for v, n in zip(labels.tolist(), counts, strict=True) if n]
    values, counts = np.unique(predict, return_counts=True)
    return list(zip(values.tolist(), counts.tolist(), strict=True))


@functools.lru_cache(maxsize=64)
def _labels(classes: tuple, dtype: np.dtype) -> np.ndarray | None:
    """The classes as predict's dtype (once per model version), None when a cast changes one."""
    try:
        labels = np.asarray(classes, dtype=dtype)
    except (TypeError, ValueError):
        return None
    return labels if labels.tolist() == list(classes) else None


def _edges(served: model.ServedModel) -> np.ndarray:
    """Ten equal buckets over the label's training range when the schema has it, else log-spaced."""
    label = served.schema.label
    if label is not None:
        spec = served.schema.column(label)
        if spec.min is not None and spec.max is not None and spec.max > spec.min:
            return np.linspace(spec.min, spec.max, 11)
    return np.array([-1e3, -1e2, -10, -1, 0, 1, 10, 1e2, 1e3, 1e4], dtype=np.float64)


def _fmt(edge: float) -> str:
    return repr(float(edge))


def _fast(served: model.ServedModel) -> str:
    return "true" if served.fast is not None else "false"
