"""The rollout rule on inline comparisons whose verdict is obvious, and its interval arithmetic."""

import pytest

from kfops import errors, rollout

Z95 = rollout.z_of(0.95)


def _comparison(diff, interval, requests=500, labelled=300, errors_=(0, 0)):
    def side(k):
        return {"requests": requests, "errors": k, "labelled": labelled,
                "error_interval": rollout.wilson(k, requests, Z95)}  # fmt: skip

    return {
        "champion": side(errors_[0]),
        "challenger": side(errors_[1]),
        "quality_difference": {"value": diff, "interval": list(interval)},
    }


def test_wilson_interval_matches_the_textbook_values():
    # 0 of 10 at 95 %: [0, 0.2775]; 5 of 10: [0.2366, 0.7634] (Wilson 1927; Agresti & Coull 1998)
    assert rollout.wilson(0, 10, Z95) == pytest.approx([0.0, 0.27753], abs=1e-5)
    assert rollout.wilson(5, 10, Z95) == pytest.approx([0.23659, 0.76341], abs=1e-5)
    assert rollout.wilson(0, 0, Z95) is None


def test_judge_waits_when_the_point_gain_is_positive_but_the_interval_includes_zero():
    verdict = rollout.judge(_comparison(0.02, (-0.01, 0.05)), rollout.RolloutRule())
    assert verdict.decision == "wait" and "includes -0.0" in verdict.reasons[0]


def test_judge_promotes_when_the_whole_interval_is_above_minus_margin():
    rule = rollout.RolloutRule(margin=0.02)
    assert rollout.judge(_comparison(0.0, (-0.015, 0.015)), rule).decision == "promote"
    assert rollout.judge(_comparison(0.0, (-0.025, 0.015)), rule).decision == "wait"


def test_judge_aborts_when_the_whole_interval_is_below_minus_margin():
    assert rollout.judge(_comparison(-0.05, (-0.08, -0.01)), rollout.RolloutRule()).decision == (
        "abort"
    )


def test_judge_aborts_on_errors_surely_above_the_champions_before_quality():
    verdict = rollout.judge(_comparison(0.1, (0.05, 0.15), errors_=(0, 30)), rollout.RolloutRule())
    assert verdict.decision == "abort" and "error rate" in verdict.reasons[0]
    # 3 errors in 500 is not surely above 0 + 1 %: quality decides
    assert rollout.judge(_comparison(0.1, (0.05, 0.15), errors_=(0, 3)), rollout.RolloutRule()
                         ).decision == "promote"  # fmt: skip


def test_judge_waits_for_labels_and_traffic():
    rule = rollout.RolloutRule()
    assert rollout.judge(_comparison(0.1, (0.05, 0.15), requests=199), rule).decision == "wait"
    verdict = rollout.judge(_comparison(0.1, (0.05, 0.15), labelled=99), rule)
    assert verdict.decision == "wait" and verdict.reasons == ("99 of 100 labelled rows",)


def test_a_shadow_short_of_traffic_says_how_many_champion_requests_it_missed():
    comparison = _comparison(0.1, (0.05, 0.15))
    comparison["challenger"]["requests"] = 150
    rule = rollout.RolloutRule()
    assert rollout.judge({**comparison, "mode": "shadow"}, rule).reasons == (
        "150 of 200 challenger requests; 350 of the champion's 500 were not shadowed "
        "(dropped or off: see kfops_shadow_requests_total)",
    )
    # a canary answers its share only: the rest is not missed
    assert rollout.judge({**comparison, "mode": "canary"}, rule).reasons == (
        "150 of 200 challenger requests",
    )


def test_rule_and_plan_refuse_bad_settings():
    with pytest.raises(errors.ConfigError, match="confidence must be in"):
        rollout.RolloutRule(confidence=1.0)
    with pytest.raises(errors.ConfigError, match="rollout mode must be one of"):
        rollout.Plan("2", mode="blue-green")
