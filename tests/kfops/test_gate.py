import pytest

from kfops import errors, gate


def _evaluation(roc_auc=0.85, baseline=0.5, slices=None, fairness=None, task="classification"):
    return {
        "task": task,
        "metrics": {"roc_auc": roc_auc, "accuracy": 0.8, "log_loss": 0.4},
        "baseline_metrics": {"roc_auc": baseline},
        "slices": slices or {},
        "fairness": fairness or {},
    }


def test_decide_blesses_good_model_without_champion_and_says_so():
    b = gate.decide(_evaluation(), gate.GateConfig())
    assert b.blessed
    assert b.reasons == ()
    assert any("no champion" in n for n in b.notes)


def test_decide_lists_every_failed_rule_not_just_the_first():
    ev = _evaluation(
        roc_auc=0.55,
        baseline=0.54,
        slices={"region=north": {"rows": 50, "roc_auc": 0.40}},
        fairness={"column": "age_band", "recall_difference": 0.6, "positive_rate_difference": 0.1},
    )
    b = gate.decide(ev, gate.GateConfig())
    assert not b.blessed
    rules = " ".join(b.reasons)
    for expected in (
        "threshold roc_auc",
        "beats baseline",
        "slice region=north",
        "fairness age_band",
    ):
        assert expected in rules


def test_decide_rejects_model_worse_than_champion_beyond_tolerance():
    b = gate.decide(_evaluation(0.80), gate.GateConfig(), champion={"metrics": {"roc_auc": 0.90}})
    assert not b.blessed
    assert "not worse than champion" in b.reasons[0]


def test_decide_accepts_model_within_champion_tolerance():
    b = gate.decide(
        _evaluation(0.895),
        gate.GateConfig(champion_tolerance=0.01),
        champion={"metrics": {"roc_auc": 0.90}},
    )
    assert b.blessed


def test_decide_uses_metric_direction_for_lower_is_better_thresholds():
    cfg = gate.GateConfig(
        metric="log_loss", thresholds={"log_loss": 0.3}, min_lift_over_baseline=None
    )
    b = gate.decide(_evaluation(), cfg)
    assert not b.blessed and "log_loss 0.4000 must be <= 0.3000" in b.reasons[0]


def test_decide_skips_slices_without_metrics():
    ev = _evaluation(slices={"region=tiny": {"rows": 3, "roc_auc": None}})
    assert gate.decide(ev, gate.GateConfig()).blessed


def test_decide_never_blesses_with_no_rules():
    cfg = gate.GateConfig(
        thresholds={},
        min_lift_over_baseline=None,
        slice_floor=None,
        max_fairness_gap=None,
        champion_tolerance=None,
    )
    b = gate.decide(_evaluation(), cfg)
    assert not b.blessed and "no rules" in b.reasons[0]


def test_decide_names_missing_metric():
    with pytest.raises(errors.ConfigError, match=r"\['pr_auc'\]"):
        gate.decide(_evaluation(), gate.GateConfig(thresholds={"pr_auc": 0.5}))


def test_decide_uses_regression_defaults():
    ev = {
        "task": "regression",
        "metrics": {"r2": 0.05, "rmse": 1.0},
        "baseline_metrics": {"r2": 0.0},
    }
    b = gate.decide(ev, gate.GateConfig())
    assert not b.blessed and "threshold r2" in b.reasons[0]


def test_blessing_round_trips_through_dict():
    b = gate.decide(_evaluation(0.5), gate.GateConfig())
    assert gate.Blessing.from_dict(b.to_dict()) == b


def test_gate_config_refuses_negative_tolerance():
    with pytest.raises(errors.ConfigError, match="champion_tolerance"):
        gate.GateConfig(champion_tolerance=-1)


def test_decide_against_record_compares_with_comparable_champion():
    record = {"exists": True, "version": "3", "comparable": True, "evaluation": _evaluation(0.95)}
    record["model_sha256"] = "ab" * 32
    b = gate.decide_against_record(_evaluation(0.85), gate.GateConfig(), record, "cd" * 32)
    assert not b.blessed and "champion" in b.reasons[0]


def test_decide_against_record_notes_incomparable_champion():
    record = {"exists": True, "version": "3", "comparable": False, "reason": "schema changed"}
    b = gate.decide_against_record(_evaluation(0.85), gate.GateConfig(), record, "cd" * 32)
    assert b.blessed
    assert b.notes == ("champion v3 not comparable: schema changed",)


def test_decide_against_record_refuses_a_candidate_identical_to_the_champion():
    record = {
        "exists": True,
        "version": "1",
        "comparable": True,
        "model_sha256": "ab" * 32,
        "evaluation": _evaluation(0.85),
    }
    b = gate.decide_against_record(_evaluation(0.85), gate.GateConfig(), record, "ab" * 32)
    assert not b.blessed
    assert b.reasons[0].startswith("new model: identical to champion v1")


def test_decide_against_record_blesses_a_different_equally_good_candidate():
    record = {
        "exists": True,
        "version": "1",
        "comparable": True,
        "model_sha256": "ab" * 32,
        "evaluation": _evaluation(0.85),
    }
    assert gate.decide_against_record(
        _evaluation(0.85), gate.GateConfig(), record, "cd" * 32
    ).blessed


@pytest.mark.parametrize(("rows", "blessed"), [(60, True), (6000, False)])
def test_relative_slice_rule_allows_for_the_slice_own_sampling_noise(rows, blessed):
    """0.2 below overall: within two standard errors on 60 rows, a real gap on 6,000."""
    ev = _evaluation(roc_auc=0.85, slices={"region=west": {"rows": rows, "roc_auc": 0.65}})
    b = gate.decide(ev, gate.GateConfig(slice_floor=0.6))
    assert b.blessed is blessed, b.reasons
