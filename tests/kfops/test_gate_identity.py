"""The gate's "identical to the champion" rule never skips silently (issue 15.8)."""

import pytest

from kfops import errors, gate

SHA_A, SHA_B = "ab" * 32, "cd" * 32


def _evaluation(auc: float) -> dict:
    return {
        "task": "classification",
        "metrics": {"roc_auc": auc},
        "baseline_metrics": {"roc_auc": 0.5},
        "slices": {},
        "fairness": {},
    }


def _record(**extra) -> dict:
    record = {"exists": True, "version": "4", "comparable": True, "evaluation": _evaluation(0.85)}
    return {**record, **extra}


@pytest.mark.parametrize("candidate_sha", [None, ""])
def test_missing_candidate_digest_with_a_champion_is_an_error(candidate_sha):
    with pytest.raises(errors.IntegrityError, match="candidate model has no sha256"):
        gate.decide_against_record(
            _evaluation(0.85), gate.GateConfig(), _record(model_sha256=SHA_A), candidate_sha
        )


def test_missing_champion_digest_is_an_error():
    with pytest.raises(errors.IntegrityError, match="champion v4 has no sha256"):
        gate.decide_against_record(_evaluation(0.85), gate.GateConfig(), _record(), SHA_B)


def test_incomparable_champion_without_digest_still_needs_the_candidate_digest():
    record = {"exists": True, "version": "4", "comparable": False, "reason": "schema changed"}
    blessing = gate.decide_against_record(_evaluation(0.85), gate.GateConfig(), record, SHA_B)
    assert blessing.blessed and blessing.notes == ("champion v4 not comparable: schema changed",)
    with pytest.raises(errors.IntegrityError):
        gate.decide_against_record(_evaluation(0.85), gate.GateConfig(), record, None)


def test_no_champion_needs_no_digest():
    blessing = gate.decide_against_record(_evaluation(0.85), gate.GateConfig(), {"exists": False})
    assert blessing.blessed


def test_identical_candidate_is_refused_even_when_every_metric_rule_passes():
    record = _record(model_sha256=SHA_A)
    same = gate.decide_against_record(_evaluation(0.85), gate.GateConfig(), record, SHA_A)
    assert not same.blessed
    assert same.reasons == (
        f"new model: identical to champion v4 (model sha256 {SHA_A[:12]}): nothing new to push",
    )
    other = gate.decide_against_record(_evaluation(0.85), gate.GateConfig(), record, SHA_B)
    assert other.blessed and other.reasons == ()
