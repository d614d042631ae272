"""Every metric kfops measures, once: its task, which direction is better, label and format.

Evaluate measures these names, the gate compares them (a floor for higher-is-better metrics, a
ceiling for the others), the monitor holds a quality floor on the ones it can compute from
labelled traffic, and the CLI summaries and reports show them in this order.
"""

from __future__ import annotations

import dataclasses

from kfops import errors


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric.

    Attributes:
        name: the key in evaluations, run records and KFP Metrics.
        task: "classification" or "regression".
        higher_is_better: False for error metrics (log loss, Brier, MAE, RMSE).
        label: what a report calls it.
        key: shown in the one-screen summaries (`kfops run`, `kfops runs list`).
        monitored: the monitor can compute it on labelled traffic and hold a floor on it.
    """

    name: str
    task: str
    higher_is_better: bool
    label: str
    key: bool = False
    monitored: bool = False
    format: str = ".4f"

    def show(self, value: float) -> str:
        """The value as the summaries print it."""
        return format(value, self.format)


# Order is display order: the summaries list key metrics as they come here.
CATALOG: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", "classification", True, "ROC AUC", key=True, monitored=True),
        Metric("pr_auc", "classification", True, "PR AUC (average precision)", key=True),
        Metric("f1", "classification", True, "F1", key=True, monitored=True),
        Metric("accuracy", "classification", True, "accuracy", key=True, monitored=True),
        Metric("log_loss", "classification", False, "log loss", key=True),
        Metric("precision", "classification", True, "precision", monitored=True),
        Metric("recall", "classification", True, "recall", monitored=True),
        Metric("brier", "classification", False, "Brier score"),
        Metric("r2", "regression", True, "R2", key=True, monitored=True),
        Metric("rmse", "regression", False, "RMSE", key=True, monitored=True),
        Metric("mae", "regression", False, "MAE", key=True, monitored=True),
    )
}
# The key metric of each task: what the gate compares when not told otherwise.
DEFAULT_METRIC = {"classification": "roc_auc", "regression": "r2"}
MONITORED = tuple(name for name, m in CATALOG.items() if m.monitored)


def get(name: str) -> Metric:
    """The catalog entry; ConfigError naming the known metrics for an unknown name."""
    errors.check_choice("metric", name, tuple(CATALOG))
    return CATALOG[name]


def names(task: str) -> tuple[str, ...]:
    """The metrics of a task, in display order."""
    return tuple(name for name, m in CATALOG.items() if m.task == task)


def higher_is_better(name: str) -> bool:
    """Direction of a metric; unknown names (e.g. a custom one) count as higher-is-better."""
    m = CATALOG.get(name)
    return True if m is None else m.higher_is_better


def key_metrics(metrics: dict[str, float]) -> list[str]:
    """The key metrics present in `metrics`, in display order."""
    return [name for name, m in CATALOG.items() if m.key and name in metrics]
