"""The metric catalog is the one list: evaluate measures exactly it, the monitor can compute every
metric it may hold a floor on, and the gate and the summaries take direction and order from it."""

import numpy as np
import pytest

from kfops import gate, metric_catalog
from kfops.commands import runs as runs_cmd
from kfops.evaluate import measures as metrics
from kfops.monitor import evidently_run
from kfops.monitor import rules as monitor_config


def test_evaluate_measures_exactly_the_catalog():
    y = np.array([0, 1, 0, 1, 1, 0])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9], [0.7, 0.3]])
    scored = metrics.Scored(y, proba.argmax(axis=1), proba, [0, 1], 1)
    assert set(metrics.measure(scored, "classification")) == set(
        metric_catalog.names("classification")
    )
    reg = metrics.Scored(np.array([1.0, 2.0, 3.0]), np.array([1.1, 1.9, 3.2]), None, [])
    assert set(metrics.measure(reg, "regression")) == set(metric_catalog.names("regression"))


def test_monitor_computes_every_metric_it_may_hold_a_floor_on():
    assert set(metric_catalog.MONITORED) == set(evidently_run._METRIC_NAMES.values())


@pytest.mark.parametrize("name", list(metric_catalog.CATALOG))
def test_gate_and_monitor_take_direction_from_the_catalog(name):
    better = metric_catalog.CATALOG[name].higher_is_better
    ev = {"task": metric_catalog.CATALOG[name].task, "metrics": {name: 0.5}}
    cfg = gate.GateConfig(metric=name, thresholds={name: 0.6}, min_lift_over_baseline=None,
                          slice_floor=None, max_fairness_gap=None)  # fmt: skip
    # 0.5 misses a floor of 0.6 and meets a ceiling of 0.6
    assert gate.decide(ev, cfg).blessed is (not better)
    if name in metric_catalog.MONITORED:
        assert monitor_config.QualityFloor(name, 0.6).breached(0.5) is better


def test_summaries_list_key_metrics_in_catalog_order():
    metrics_ = {"log_loss": 0.4, "mae": 1.0, "roc_auc": 0.8, "f1": 0.5, "custom": 1.0}
    assert metric_catalog.key_metrics(metrics_) == ["roc_auc", "f1", "log_loss", "mae"]
    assert list(runs_cmd.key_metrics(metrics_)) == ["roc_auc", "f1", "log_loss"]


def _perfect_and_poor(task):
    if task == "regression":
        y = np.array([1.0, 2.0, 3.0, 4.0])
        return (metrics.Scored(y, y.copy(), None, []),
                metrics.Scored(y, np.array([2.0, 1.0, 4.0, 2.0]), None, []))  # fmt: skip
    y = np.array([0, 1, 0, 1, 1, 0])
    good = np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9], [0.9, 0.1]])
    bad = good[:, ::-1]
    return (metrics.Scored(y, good.argmax(axis=1), good, [0, 1], 1),
            metrics.Scored(y, bad.argmax(axis=1), bad, [0, 1], 1))  # fmt: skip


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_catalog_direction_matches_what_the_metric_measures(task):
    """A good model scores better than a bad one in the catalog's direction, for every metric."""
    good, bad = (metrics.measure(s, task) for s in _perfect_and_poor(task))
    for name in metric_catalog.names(task):
        better = good[name] > bad[name]
        assert better is metric_catalog.CATALOG[name].higher_is_better, name
