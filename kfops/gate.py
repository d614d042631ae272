"""The gate: bless a candidate model only when every rule passes, and say why either way.

Learned from TFX's Evaluator: value thresholds (absolute floors) plus change thresholds (against the
baseline and the current champion). With no champion yet, champion rules are skipped and the
blessing says so. A gate with no rules at all refuses to bless rather than blessing silently.

The gate reads evaluations in their JSON form (`Evaluation.to_dict()`), since that is what crosses
the step boundary: `{"task", "metrics", "baseline_metrics", "slices", "fairness"}`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from kfops import errors, metric_catalog, parameters

DEFAULT_METRIC = metric_catalog.DEFAULT_METRIC
DEFAULT_THRESHOLDS = {"classification": {"roc_auc": 0.70}, "regression": {"r2": 0.10}}
# Metrics that must each beat the Dummy baseline besides the key one. A threshold-free score
# (ROC AUC) alone blessed a model whose decisions were no better than "always the majority
# class" (issue 14): the thresholded F1 must lift too. Regression's R2 lift is already the
# lift over predicting the mean.
COMPANION_LIFT = {"classification": ("f1",), "regression": ()}
# A positive class rarer than this (the prior baseline's PR AUC is its rate) makes PR AUC count:
# ROC AUC looks good on imbalanced data while precision at useful recall does not.
IMBALANCED_BELOW = 0.20
# Scores in [0, 1] where an absolute per-slice floor means something; R2 (unbounded below,
# noisy on small slices) and error metrics (in the label's units) get only the relative rule.
BOUNDED_SCORES = ("roc_auc", "pr_auc", "f1", "accuracy", "precision", "recall")
# The relative slice rule: no slice's key metric may trail the overall value by more than this
# (higher-is-better metrics), or exceed it by more than this fraction (error metrics).
SLICE_MAX_SHORTFALL = {"roc_auc": 0.10, "pr_auc": 0.15, "f1": 0.15, "accuracy": 0.10, "r2": 0.25}
SLICE_MAX_ERROR_RATIO = 0.5
DEFAULT_SLICE_SHORTFALL = 0.15
# A slice's score is an estimate from its own rows: the shortfall allowed for a score in [0, 1]
# widens by two standard errors at the worst-case variance (0.25 / rows), so a 60-row slice is not
# held to what a 6,000-row one shows (sampling noise alone moves a 60-row ROC AUC by ~0.1).
SLICE_NOISE_Z = 2.0
FAIRNESS_METRICS = ("recall_difference", "positive_rate_difference")
_OFF = f"{parameters.RULE_OFF} turns the rule off"


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """Rules a candidate must pass. Empty/None fields take the task's defaults.

    Attributes:
        metric: the key metric compared with baseline, slices and champion ("" = task default:
            roc_auc for classification, r2 for regression).
        thresholds: metric -> floor (or ceiling for lower-is-better metrics such as rmse).
            None = task defaults; an empty dict means no value thresholds. KFP and the CLI
            carry None as {}.
        min_lift_over_baseline: the key metric, and the task's companion metrics
            (COMPANION_LIFT; PR AUC on imbalanced data), must beat the Dummy baseline by this much.
        slice_floor: slice rules (None: none). Every slice must be within the relative rule of
            the overall key metric (SLICE_MAX_SHORTFALL); on a bounded score (BOUNDED_SCORES) it
            must also reach this absolute floor, which is not applied to R2 or error metrics.
        fairness_metric: which fairness gap to bound (one of FAIRNESS_METRICS).
        max_fairness_gap: bound on that gap (None: no rule).
        champion_tolerance: the candidate may be at most this much worse than the champion.

    A None rule travels through KFP and the CLI as parameters.RULE_OFF.
    """

    metric: str = parameters.field(
        "",
        "key metric for baseline, slice and champion rules ('' = the task's)",
        choices=("", *metric_catalog.CATALOG),
    )
    thresholds: Mapping[str, float] | None = parameters.field(
        None, "metric -> floor (ceiling for error metrics); {} = the task's", none_as={}
    )
    min_lift_over_baseline: float | None = parameters.field(
        0.02,
        f"the key metric must beat the baseline by this much; {_OFF}",
        none_as=parameters.RULE_OFF,
    )
    slice_floor: float | None = parameters.field(
        0.60, f"every slice must reach this key-metric value; {_OFF}", none_as=parameters.RULE_OFF
    )
    fairness_metric: str = parameters.field(
        "recall_difference", "which fairness gap to bound", choices=FAIRNESS_METRICS
    )
    max_fairness_gap: float | None = parameters.field(
        0.25, f"bound on the fairness gap; {_OFF}", none_as=parameters.RULE_OFF
    )
    champion_tolerance: float | None = parameters.field(
        0.01,
        f"the candidate may trail the champion by this much; {_OFF}",
        none_as=parameters.RULE_OFF,
    )

    def __post_init__(self):
        errors.check_choice("fairness_metric", self.fairness_metric, FAIRNESS_METRICS)
        for name in ("min_lift_over_baseline", "max_fairness_gap", "champion_tolerance"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise errors.ConfigError(f"{name} must be a finite number >= 0, got {value!r}")

    def resolved(self, task: str) -> GateConfig:
        """This config with the task's defaults filled in."""
        if task not in DEFAULT_METRIC:
            raise errors.ConfigError(
                f"unknown task {task!r}; expected classification or regression"
            )
        return dataclasses.replace(
            self,
            metric=self.metric or DEFAULT_METRIC[task],
            thresholds=DEFAULT_THRESHOLDS[task]
            if self.thresholds is None
            else dict(self.thresholds),
        )


@dataclasses.dataclass(frozen=True)
class Check:
    """One rule's outcome."""

    rule: str
    passed: bool
    detail: str


@dataclasses.dataclass(frozen=True)
class Blessing:
    """The decision: blessed or not, every failed rule as a reason, and every check made."""

    blessed: bool
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, written as the blessing artifact."""
        return {
            "blessed": self.blessed,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "checks": [dataclasses.asdict(c) for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Blessing:
        """Inverse of `to_dict`."""
        return cls(
            blessed=bool(data["blessed"]),
            reasons=tuple(data.get("reasons", ())),
            checks=tuple(Check(**c) for c in data.get("checks", ())),
            notes=tuple(data.get("notes", ())),
        )


def decide(
    candidate: Mapping[str, Any],
    config: GateConfig,
    champion: Mapping[str, Any] | None = None,
) -> Blessing:
    """Blesses the candidate only if every rule passes; returns every failed rule, not the first.

    Args:
        candidate: the candidate's evaluation (`Evaluation.to_dict()`).
        config: the rules.
        champion: the current champion's evaluation on the same test data, or None.

    Returns:
        The blessing. Not blessed is a normal outcome, not an exception.

    Raises:
        ConfigError: the key metric or a thresholded metric is not in the evaluation.
    """
    cfg = config.resolved(candidate["task"])
    metrics = candidate["metrics"]
    _require_metrics(metrics, [cfg.metric, *cfg.thresholds])
    checks = [*_value_checks(metrics, cfg), *_baseline_checks(candidate, cfg)]
    checks += _slice_checks(candidate, cfg) + _fairness_checks(candidate, cfg)
    notes = []
    if champion is None:
        notes.append("no champion yet: champion comparison skipped")
    else:
        checks += _champion_checks(metrics, champion, cfg)
    if not checks:
        checks.append(Check("rules", False, "the gate has no rules configured; refusing to bless"))
    reasons = tuple(f"{c.rule}: {c.detail}" for c in checks if not c.passed)
    return Blessing(not reasons, reasons, tuple(checks), tuple(notes))


def _better(metric: str, value: float, reference: float, margin: float = 0.0) -> bool:
    """Whether value beats reference by margin, in the metric's direction."""
    if not metric_catalog.higher_is_better(metric):
        return value <= reference - margin
    return value >= reference + margin


def _value_checks(metrics: Mapping[str, float], cfg: GateConfig) -> list[Check]:
    checks = []
    for name, bound in sorted(cfg.thresholds.items()):
        value = metrics[name]
        op = ">=" if metric_catalog.higher_is_better(name) else "<="
        ok = value is not None and _better(name, value, bound)
        checks.append(
            Check(f"threshold {name}", ok, f"{name} {_fmt(value)} must be {op} {bound:.4f}")
        )
    return checks


def lift_metrics(candidate: Mapping[str, Any], metric: str) -> tuple[str, ...]:
    """The metrics that must beat the baseline.

    The key one, the task's companions, and PR AUC when the positive class is rare (the prior
    baseline's PR AUC is the positive rate).
    """
    task = candidate["task"]
    names = [metric, *COMPANION_LIFT.get(task, ())]
    base_pr = (candidate.get("baseline_metrics") or {}).get("pr_auc")
    if task == "classification" and base_pr is not None and base_pr < IMBALANCED_BELOW:
        names.append("pr_auc")
    present = candidate.get("metrics") or {}
    return tuple(n for n in dict.fromkeys(names) if n == metric or n in present)


def _baseline_checks(candidate: Mapping[str, Any], cfg: GateConfig) -> list[Check]:
    if cfg.min_lift_over_baseline is None:
        return []
    checks = []
    for name in lift_metrics(candidate, cfg.metric):
        base = (candidate.get("baseline_metrics") or {}).get(name)
        if base is None:
            checks.append(Check("baseline", False, f"baseline {name} missing from the evaluation"))
            continue
        value = candidate["metrics"][name]
        ok = value is not None and _better(name, value, base, cfg.min_lift_over_baseline)
        detail = (
            f"{name} {_fmt(value)} vs baseline {_fmt(base)}: "
            f"needs a lift of {cfg.min_lift_over_baseline:.4f}"
        )
        rule = "beats baseline" if name == cfg.metric else f"beats baseline on {name}"
        checks.append(Check(rule, ok, detail))
    return checks


def _slice_checks(candidate: Mapping[str, Any], cfg: GateConfig) -> list[Check]:
    if cfg.slice_floor is None:
        return []
    metric, overall = cfg.metric, candidate["metrics"].get(cfg.metric)
    checks = []
    for name, values in sorted((candidate.get("slices") or {}).items()):
        value = values.get(metric)
        if value is None:  # too small or single-class slice: reported by evaluate, not judged
            continue
        if overall is not None:
            checks.append(_relative_slice_check(metric, name, value, overall, values.get("rows")))
        if metric in BOUNDED_SCORES:
            ok = _better(metric, value, cfg.slice_floor)
            detail = f"{metric} {_fmt(value)} on {name} vs floor {cfg.slice_floor:.4f}"
            checks.append(Check(f"slice {name}", ok, detail))
    return checks


def _relative_slice_check(
    metric: str, name: str, value: float, overall: float, rows: int | None = None
) -> Check:
    """No slice much worse than the model overall, in the metric's own terms, beyond its noise."""
    if metric_catalog.higher_is_better(metric):
        shortfall = SLICE_MAX_SHORTFALL.get(metric, DEFAULT_SLICE_SHORTFALL)
        if metric in BOUNDED_SCORES and rows:
            shortfall += SLICE_NOISE_Z * math.sqrt(0.25 / rows)
        ok = value >= overall - shortfall
        allowed = f"may trail it by {shortfall:.4f}"
    else:
        ok = value <= overall * (1 + SLICE_MAX_ERROR_RATIO)
        allowed = f"may exceed it by {SLICE_MAX_ERROR_RATIO:.0%}"
    detail = f"{metric} {_fmt(value)} on {name} vs overall {_fmt(overall)} ({allowed})"
    return Check(f"slice {name} vs overall", ok, detail)


def _fairness_checks(candidate: Mapping[str, Any], cfg: GateConfig) -> list[Check]:
    fairness = candidate.get("fairness") or {}
    if cfg.max_fairness_gap is None or not fairness:
        return []
    gap = fairness.get(cfg.fairness_metric)
    column = fairness.get("column", "?")
    if gap is None:
        return []
    ok = gap <= cfg.max_fairness_gap
    detail = (
        f"{cfg.fairness_metric} across {column} {_fmt(gap)} vs limit {cfg.max_fairness_gap:.4f}"
    )
    return [Check(f"fairness {column}", ok, detail)]


def _champion_checks(
    metrics: Mapping[str, float], champion: Mapping[str, Any], cfg: GateConfig
) -> list[Check]:
    if cfg.champion_tolerance is None:
        return []
    theirs = (champion.get("metrics") or {}).get(cfg.metric)
    ours = metrics[cfg.metric]
    if theirs is None:
        return [Check("champion", False, f"champion has no {cfg.metric} on this test data")]
    # "Not worse beyond a tolerance": the candidate may trail by at most `champion_tolerance`.
    ok = ours is not None and _better(cfg.metric, ours, theirs, -cfg.champion_tolerance)
    detail = (
        f"{cfg.metric} {_fmt(ours)} vs champion {_fmt(theirs)} "
        f"(tolerance {cfg.champion_tolerance:.4f})"
    )
    return [Check("not worse than champion", ok, detail)]


def _require_metrics(metrics: Mapping[str, Any], names: list[str]) -> None:
    missing = sorted({n for n in names if n not in metrics})
    if missing:
        raise errors.ConfigError(
            f"gate rules use metrics {missing} that the evaluation lacks; it has {sorted(metrics)}"
        )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def decide_against_record(
    candidate: Mapping[str, Any],
    config: GateConfig,
    record: Mapping[str, Any],
    candidate_sha256: str | None = None,
) -> Blessing:
    """`decide` with the champion step's record (see kfops.champion.resolve).

    A champion that cannot score the new test data (say the schema changed) is not compared; the
    blessing notes it, so a reviewer sees that the change rule was skipped and why. A candidate
    byte-identical to the champion (same data, code and seed) is not blessed: pushing it would
    only add a duplicate version.

    Raises:
        IntegrityError: a champion exists but the candidate's or the comparable champion's model
            sha256 is missing, so identity cannot be checked (an error, never a skipped rule).
    """
    if not record.get("exists"):
        return decide(candidate, config, None)
    champion_sha256 = record.get("model_sha256")
    if not candidate_sha256 or (record.get("comparable") and not champion_sha256):
        whose = "candidate model" if not candidate_sha256 else f"champion v{record.get('version')}"
        raise errors.IntegrityError(
            f"the {whose} has no sha256 digest, so the gate cannot tell whether the candidate "
            "is identical to the champion: record the model file's sha256 (the train step's "
            "model metadata, the registry manifest)"
        )
    if candidate_sha256 == champion_sha256:
        blessing = decide(candidate, config, None)
        same = Check(
            "new model",
            False,
            f"identical to champion v{record.get('version')} "
            f"(model sha256 {candidate_sha256[:12]}): nothing new to push",
        )
        reasons = (f"{same.rule}: {same.detail}", *blessing.reasons)
        return Blessing(False, reasons, (same, *blessing.checks), ())
    if not record.get("comparable"):
        blessing = decide(candidate, config, None)
        note = f"champion v{record.get('version')} not comparable: {record.get('reason')}"
        notes = tuple(n for n in blessing.notes if not n.startswith("no champion")) + (note,)
        return dataclasses.replace(blessing, notes=notes)
    champion = {**record["evaluation"], "version": record.get("version")}
    return decide(candidate, config, champion)
