"""Exact gate verdicts at every rule's edge, written from the mutants `make mutation` found alive.

Each rule is met at exact equality (binary fractions, so no rounding decides), then missed by
1/1024; the whole blessing (rule names, pass flags, detail text, notes) is compared, since a
reviewer reads those to learn why a model was or was not pushed.
"""

import math

import pytest

from kfops import errors, gate

EPS = 1 / 1024
ALL_OFF = {
    "thresholds": {},
    "min_lift_over_baseline": None,
    "slice_floor": None,
    "max_fairness_gap": None,
    "champion_tolerance": None,
}


def _classification(shift=0.0):
    """Every rule met exactly when shift is 0; every rule missed when shift is -EPS."""
    return {
        "task": "classification",
        "metrics": {
            "roc_auc": 0.75 + shift,
            "f1": 0.5 + shift,
            "pr_auc": 0.375 + shift,
            "accuracy": 0.875,
            "log_loss": 0.5 - shift,
        },
        # PR AUC of the prior baseline is the positive rate: 0.125 < 0.20, so PR AUC must lift
        "baseline_metrics": {"roc_auc": 0.5, "f1": 0.25, "pr_auc": 0.125},
        "slices": {
            "region=b": {"rows": 100, "roc_auc": 0.55 + 2 * shift},
            "region=a": {"rows": 3, "roc_auc": None},
        },
        "fairness": {"column": "sex", "recall_difference": 0.25 - shift},
    }


CONFIG = gate.GateConfig(
    thresholds={"roc_auc": 0.75, "log_loss": 0.5},
    min_lift_over_baseline=0.25,
    slice_floor=0.55,
    max_fairness_gap=0.25,
    champion_tolerance=0.125,
)
CHAMPION = {"metrics": {"roc_auc": 0.875}}


def test_every_rule_met_at_equality_blesses_with_every_check_spelled_out():
    blessing = gate.decide(_classification(), CONFIG, CHAMPION)
    assert blessing.to_dict() == {
        "blessed": True,
        "reasons": [],
        "notes": [],
        "checks": [
            {"rule": rule, "passed": True, "detail": detail}
            for rule, detail in [
                ("threshold log_loss", "log_loss 0.5000 must be <= 0.5000"),
                ("threshold roc_auc", "roc_auc 0.7500 must be >= 0.7500"),
                ("beats baseline", "roc_auc 0.7500 vs baseline 0.5000: needs a lift of 0.2500"),
                ("beats baseline on f1", "f1 0.5000 vs baseline 0.2500: needs a lift of 0.2500"),
                (
                    "beats baseline on pr_auc",
                    "pr_auc 0.3750 vs baseline 0.1250: needs a lift of 0.2500",
                ),
                # 100 rows: 0.10 + 2 * sqrt(0.25 / 100) = 0.20 below 0.75 is allowed
                (
                    "slice region=b vs overall",
                    "roc_auc 0.5500 on region=b vs overall 0.7500 (may trail it by 0.2000)",
                ),
                ("slice region=b", "roc_auc 0.5500 on region=b vs floor 0.5500"),
                ("fairness sex", "recall_difference across sex 0.2500 vs limit 0.2500"),
                (
                    "not worse than champion",
                    "roc_auc 0.7500 vs champion 0.8750 (tolerance 0.1250)",
                ),
            ]
        ],
    }


def test_every_rule_missed_by_a_hair_is_a_reason_in_rule_order():
    blessing = gate.decide(_classification(-EPS), CONFIG, CHAMPION)
    assert not blessing.blessed
    assert [c.passed for c in blessing.checks] == [False] * 9
    assert blessing.reasons == (
        "threshold log_loss: log_loss 0.5010 must be <= 0.5000",
        "threshold roc_auc: roc_auc 0.7490 must be >= 0.7500",
        "beats baseline: roc_auc 0.7490 vs baseline 0.5000: needs a lift of 0.2500",
        "beats baseline on f1: f1 0.4990 vs baseline 0.2500: needs a lift of 0.2500",
        "beats baseline on pr_auc: pr_auc 0.3740 vs baseline 0.1250: needs a lift of 0.2500",
        "slice region=b vs overall: roc_auc 0.5480 on region=b vs overall 0.7490 "
        "(may trail it by 0.2000)",
        "slice region=b: roc_auc 0.5480 on region=b vs floor 0.5500",
        "fairness sex: recall_difference across sex 0.2510 vs limit 0.2500",
        "not worse than champion: roc_auc 0.7490 vs champion 0.8750 (tolerance 0.1250)",
    )


def test_relative_slice_rule_alone_at_equality_and_just_below():
    """No rows known: the shortfall is the metric's own (0.10 for ROC AUC), not widened."""
    cfg = gate.GateConfig(**{**ALL_OFF, "slice_floor": 0.0})
    ev = {"task": "classification", "metrics": {"roc_auc": 0.75}, "slices": {}}
    for value, rows, passed in [(0.625, None, False), (0.625, 0, False), (0.6875, None, True)]:
        ev["slices"] = {"s": {"rows": rows, "roc_auc": value}}
        check = gate.decide(ev, cfg).checks[0]
        assert check == gate.Check(
            "slice s vs overall",
            passed,
            f"roc_auc {value:.4f} on s vs overall 0.7500 (may trail it by 0.1000)",
        )


def test_slice_without_overall_value_is_judged_on_the_floor_only():
    cfg = gate.GateConfig(**{**ALL_OFF, "slice_floor": 0.5})
    ev = {"task": "classification", "metrics": {"roc_auc": None}, "slices": {"s": {"roc_auc": 0.5}}}
    assert gate.decide(ev, cfg).checks == (
        gate.Check("slice s", True, "roc_auc 0.5000 on s vs floor 0.5000"),
    )


def test_error_metric_slices_get_the_ratio_rule_and_no_floor():
    cfg = gate.GateConfig(**{**ALL_OFF, "metric": "rmse", "slice_floor": 0.5})
    ev = {"task": "regression", "metrics": {"rmse": 2.0}, "slices": {}}
    for value, passed in [(3.0, True), (3.0 + EPS, False)]:
        ev["slices"] = {"s": {"rows": 50, "rmse": value}}
        assert gate.decide(ev, cfg).checks == (
            gate.Check(
                "slice s vs overall",
                passed,
                f"rmse {value:.4f} on s vs overall 2.0000 (may exceed it by 50%)",
            ),
        )


@pytest.mark.parametrize(
    ("metric", "overall", "value", "passed"),
    [
        ("r2", 0.75, 0.5, True),  # R2: 0.25, never widened by rows (not a bounded score)
        ("r2", 0.75, 0.5 - EPS, False),
        ("precision", 0.75, 0.5, True),  # not in the table: 0.15, + 2 * sqrt(0.25 / 100)
        ("precision", 0.75, 0.5 - EPS, False),
    ],
)
def test_relative_slice_shortfall_per_metric(metric, overall, value, passed):
    cfg = gate.GateConfig(**{**ALL_OFF, "metric": metric, "slice_floor": 0.0})
    task = "regression" if metric == "r2" else "classification"
    ev = {"task": task, "metrics": {metric: overall}, "slices": {"s": {"rows": 100, metric: value}}}
    check = gate.decide(ev, cfg).checks[0]
    assert (check.passed, check.detail.endswith("(may trail it by 0.2500)")) == (passed, True)


def test_lower_is_better_key_metric_needs_its_lift_downwards():
    cfg = gate.GateConfig(**{**ALL_OFF, "metric": "log_loss", "min_lift_over_baseline": 0.25})
    ev = {
        "task": "classification",
        "metrics": {"log_loss": 0.5},
        "baseline_metrics": {"log_loss": 0.75},
    }
    assert gate.decide(ev, cfg).checks == (
        gate.Check(
            "beats baseline", True, "log_loss 0.5000 vs baseline 0.7500: needs a lift of 0.2500"
        ),
    )
    ev["metrics"]["log_loss"] = 0.5 + EPS
    assert not gate.decide(ev, cfg).blessed


def test_lower_is_better_champion_rule_allows_the_tolerance_upwards():
    cfg = gate.GateConfig(**{**ALL_OFF, "metric": "rmse", "champion_tolerance": 0.25})
    champion = {"metrics": {"rmse": 1.0}}
    for ours, passed in [(1.25, True), (1.25 + EPS, False)]:
        ev = {"task": "regression", "metrics": {"rmse": ours}}
        assert gate.decide(ev, cfg, champion).checks == (
            gate.Check(
                "not worse than champion",
                passed,
                f"rmse {ours:.4f} vs champion 1.0000 (tolerance 0.2500)",
            ),
        )


def test_missing_values_fail_their_rules_and_print_n_a():
    cfg = gate.GateConfig(thresholds={"f1": 0.5}, champion_tolerance=0.0, slice_floor=None)
    ev = {
        "task": "classification",
        "metrics": {"roc_auc": None, "f1": None},
        "baseline_metrics": {"roc_auc": 0.5},
    }
    champion = {"metrics": {"roc_auc": 0.5}}
    blessing = gate.decide(ev, cfg, champion)
    assert [c.passed for c in blessing.checks] == [False] * 4
    assert blessing.reasons == (
        "threshold f1: f1 n/a must be >= 0.5000",
        "beats baseline: roc_auc n/a vs baseline 0.5000: needs a lift of 0.0200",
        "baseline: baseline f1 missing from the evaluation",
        "not worse than champion: roc_auc n/a vs champion 0.5000 (tolerance 0.0000)",
    )


def test_champion_without_the_key_metric_is_a_failed_rule():
    cfg = gate.GateConfig(**{**ALL_OFF, "champion_tolerance": 0.0})
    ev = {"task": "classification", "metrics": {"roc_auc": 0.75}}
    for champion in ({"metrics": {}}, {"metrics": None}, {}):
        assert gate.decide(ev, cfg, champion).to_dict() == {
            "blessed": False,
            "reasons": ["champion: champion has no roc_auc on this test data"],
            "notes": [],
            "checks": [
                {
                    "rule": "champion",
                    "passed": False,
                    "detail": "champion has no roc_auc on this test data",
                }
            ],
        }


def test_no_rules_refuses_with_one_failed_check_and_the_note():
    blessing = gate.decide(
        {"task": "regression", "metrics": {"r2": 0.9}}, gate.GateConfig(**ALL_OFF)
    )
    assert blessing.to_dict() == {
        "blessed": False,
        "reasons": ["rules: the gate has no rules configured; refusing to bless"],
        "notes": ["no champion yet: champion comparison skipped"],
        "checks": [
            {
                "rule": "rules",
                "passed": False,
                "detail": "the gate has no rules configured; refusing to bless",
            }
        ],
    }


def test_fairness_rule_reads_the_chosen_gap_and_names_an_unknown_column():
    cfg = gate.GateConfig(
        **{**ALL_OFF, "fairness_metric": "positive_rate_difference", "max_fairness_gap": 0.25}
    )
    ev = {
        "task": "classification",
        "metrics": {"roc_auc": 0.75},
        "fairness": {"recall_difference": 0.0, "positive_rate_difference": 0.5},
    }
    assert gate.decide(ev, cfg).reasons == (
        "fairness ?: positive_rate_difference across ? 0.5000 vs limit 0.2500",
    )
    ev["fairness"] = {"column": "sex", "recall_difference": 0.0}  # the chosen gap not measured
    assert gate.decide(ev, cfg).checks[0].rule == "rules"


@pytest.mark.parametrize(
    ("baseline_pr", "expected"),
    [(0.125, ("roc_auc", "f1", "pr_auc")), (0.2, ("roc_auc", "f1")), (None, ("roc_auc", "f1"))],
)
def test_pr_auc_must_lift_only_below_the_imbalance_cut(baseline_pr, expected):
    ev = {
        "task": "classification",
        "metrics": {"roc_auc": 0.75, "f1": 0.5, "pr_auc": 0.5},
        "baseline_metrics": {"pr_auc": baseline_pr},
    }
    assert gate.lift_metrics(ev, "roc_auc") == expected


def test_lift_metrics_keeps_the_key_metric_first_once_and_drops_absent_companions():
    ev = {"task": "classification", "metrics": {"pr_auc": 0.5}, "baseline_metrics": {"pr_auc": 0.1}}
    assert gate.lift_metrics(ev, "pr_auc") == ("pr_auc",)
    assert gate.lift_metrics({"task": "classification"}, "roc_auc") == ("roc_auc",)
    assert gate.lift_metrics({"task": "regression", "metrics": {"r2": 0.5}}, "r2") == ("r2",)
    assert gate.lift_metrics({"task": "ranking", "metrics": {}}, "ndcg") == ("ndcg",)


@pytest.mark.parametrize(
    "name", ["min_lift_over_baseline", "max_fairness_gap", "champion_tolerance"]
)
def test_config_takes_zero_and_names_a_negative_or_non_finite_rule(name):
    assert getattr(gate.GateConfig(**{name: 0.0}), name) == 0.0
    for bad in (-EPS, math.nan, math.inf):
        with pytest.raises(errors.ConfigError) as info:
            gate.GateConfig(**{name: bad})
        assert str(info.value) == f"{name} must be a finite number >= 0, got {bad!r}"


def test_config_names_an_unknown_fairness_metric_and_task():
    with pytest.raises(errors.ConfigError) as info:
        gate.GateConfig(fairness_metric="accuracy_difference")
    assert str(info.value) == (
        "fairness_metric must be one of ('recall_difference', 'positive_rate_difference'), "
        "got 'accuracy_difference'"
    )
    with pytest.raises(errors.ConfigError) as info:
        gate.GateConfig().resolved("ranking")
    assert str(info.value) == "unknown task 'ranking'; expected classification or regression"


def test_resolved_fills_only_what_is_unset():
    assert gate.GateConfig().resolved("regression").thresholds == {"r2": 0.10}
    cfg = gate.GateConfig(metric="f1", thresholds={}).resolved("classification")
    assert (cfg.metric, cfg.thresholds) == ("f1", {})


def test_blessing_from_dict_defaults_missing_lists_to_empty():
    assert gate.Blessing.from_dict({"blessed": 1}) == gate.Blessing(True, (), (), ())
    full = gate.decide(_classification(-EPS), CONFIG, CHAMPION)
    assert gate.Blessing.from_dict(full.to_dict()) == full
    assert gate.Blessing.from_dict({"blessed": 0, "notes": ["n"]}).notes == ("n",)


def test_a_missing_baseline_fails_its_metric_and_the_others_are_still_judged():
    cfg = gate.GateConfig(**{**ALL_OFF, "min_lift_over_baseline": 0.25})
    ev = {
        "task": "classification",
        "metrics": {"roc_auc": 0.75, "f1": 0.5},
        "baseline_metrics": {"f1": 0.25},
    }
    assert gate.decide(ev, cfg).checks == (
        gate.Check("baseline", False, "baseline roc_auc missing from the evaluation"),
        gate.Check(
            "beats baseline on f1", True, "f1 0.5000 vs baseline 0.2500: needs a lift of 0.2500"
        ),
    )


def test_fairness_rule_off_ignores_a_measured_gap():
    cfg = gate.GateConfig(**{**ALL_OFF, "slice_floor": 0.0})
    ev = {
        "task": "classification",
        "metrics": {"roc_auc": 0.75},
        "slices": {"s": {"roc_auc": 0.75}},
        "fairness": {"column": "sex", "recall_difference": 0.9},
    }
    assert [c.rule for c in gate.decide(ev, cfg).checks] == ["slice s vs overall", "slice s"]


def test_identical_candidate_blessing_is_exact():
    ev = {"task": "classification", "metrics": {"roc_auc": 0.75}, "baseline_metrics": {}}
    cfg = gate.GateConfig(**{**ALL_OFF, "thresholds": {"roc_auc": 0.5}, "champion_tolerance": 0})
    record = {"exists": True, "version": "7", "comparable": True, "model_sha256": "ab" * 32}
    record["evaluation"] = ev
    blessing = gate.decide_against_record(ev, cfg, record, "ab" * 32)
    same = f"identical to champion v7 (model sha256 {'ab' * 6}): nothing new to push"
    assert blessing.blessed is False
    assert blessing.to_dict() == {
        "blessed": False,
        "reasons": [f"new model: {same}"],
        "notes": [],
        "checks": [
            {
                "rule": "new model",
                "passed": False,
                "detail": same,
            },
            {
                "rule": "threshold roc_auc",
                "passed": True,
                "detail": "roc_auc 0.7500 must be >= 0.5000",
            },
        ],
    }


def test_missing_digest_message_says_where_to_record_it():
    record = {"exists": True, "version": "7", "comparable": True, "evaluation": {}}
    with pytest.raises(errors.IntegrityError) as info:
        gate.decide_against_record({}, gate.GateConfig(), record, "ab" * 32)
    assert str(info.value) == (
        "the champion v7 has no sha256 digest, so the gate cannot tell whether the candidate "
        "is identical to the champion: record the model file's sha256 (the train step's "
        "model metadata, the registry manifest)"
    )
