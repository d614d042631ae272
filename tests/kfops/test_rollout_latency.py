"""Canary latency is judged (max_p99_ratio); a shadow's compute seconds are not.

Hand-built events through rollout.compare and rollout.judge: the challenger is clearly better on
quality (always right against a champion right 70 % of the time), so latency alone decides
whether it is promoted. Latencies are lognormal around 10 ms, seeded. The canary has 800
requests: with no errors on either side it needs 691 against this champion's 2000 to show its
error rate within the champion's + 0.01 (the error bound is a confidence sequence, about 1.7x
wider than one look's).
"""

import inspect

import numpy as np
import pandas as pd
import pytest
from kfops.components.rollout import rollout as rollout_component
from scipy import stats

from kfops import cli, errors, parameters, rollout
from kfops.commands import rollout as rollout_command
from tests.kfops.test_rollout_compare import _event, _truth

RULE = rollout.RolloutRule()  # max_p99_ratio 1.5, confidence 0.95
DOC = {"champion": "1", "challenger": "2", "share": 0.2}


def _rollout(mode, n_challenger, slowdown, n_champion=2000, seed=0):
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    role = "canary" if mode == "canary" else "shadow"
    for i in range(n_champion):
        right = i % 10 < 7
        rows.append(_event(f"a{i}", 0, "1", "champion", rng.lognormal(np.log(0.01), 0.5), 1))
        truth.append((f"a{i}", 1 if right else 0))
    for i in range(n_challenger):
        seconds = slowdown * rng.lognormal(np.log(0.01), 0.5)
        rid = f"a{i}" if mode == "shadow" else f"b{i}"  # a shadow answers the champion's rows
        rows.append(_event(rid, 0, "2", role, seconds, dict(truth)[rid] if mode == "shadow" else 1))
        if mode == "canary":
            truth.append((rid, 1))
    out = rollout.compare(pd.DataFrame(rows), _truth(truth), {**DOC, "mode": mode}, "class", RULE)
    return out, rollout.judge(out, RULE)


def test_a_ten_times_slower_canary_is_aborted():
    out, verdict = _rollout("canary", 800, 10.0)
    assert verdict.decision == "abort", verdict
    assert verdict.reasons[0].startswith("canary p99 >= ")
    low = out["challenger"]["p99_interval_ms"][0]
    assert low > RULE.max_p99_ratio * out["champion"]["p99_interval_ms"][1]


def test_a_canary_as_fast_as_the_champion_is_promoted():
    out, verdict = _rollout("canary", 800, 1.0)
    assert verdict.decision == "promote", verdict
    assert {out[s]["latency_kind"] for s in ("champion", "challenger")} == {"response"}


def test_a_slightly_slower_canary_waits_until_its_p99_is_bounded():
    """1.3x slower is inside the ratio, but 800 requests cannot show it; 4000 can."""
    _, verdict = _rollout("canary", 800, 1.3)
    assert verdict.decision == "wait" and "not yet shown within 1.5 x" in verdict.reasons[1]
    _, verdict = _rollout("canary", 4000, 1.3, n_champion=8000)
    assert verdict.decision == "promote", verdict


def test_a_canary_too_small_to_bound_its_p99_waits_even_when_better():
    _, verdict = _rollout("canary", 300, 1.0)
    assert verdict.decision == "wait"
    assert verdict.reasons[-1] == "too few requests to bound the canary's p99 latency (300 of 368)"


def test_shadow_compute_seconds_are_not_judged_and_are_labelled_compute():
    out, verdict = _rollout("shadow", 800, 10.0)
    assert verdict.decision == "promote", verdict
    assert out["champion"]["latency_kind"] == "response"
    assert out["challenger"]["latency_kind"] == "compute"


def test_max_p99_ratio_must_be_positive():
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(errors.ConfigError, match="max_p99_ratio must be > 0"):
            rollout.RolloutRule(max_p99_ratio=bad)


@pytest.mark.parametrize("n", [1, 50, 367, 368, 1000, 5000])
def test_p99_interval_is_the_binomial_order_statistic_interval(n):
    """Oracle: scan the Binomial(n, 0.99) cdf for the orders l (largest with cdf(l-1) <= a)
    and u (smallest with cdf(u-1) >= 1 - a), a = 0.025; values 1..n are their own orders."""
    cdf = stats.binom.cdf(np.arange(n + 1), n, 0.99)
    lows = [k for k in range(1, n + 1) if cdf[k - 1] <= 0.025]
    highs = [k for k in range(1, n + 1) if cdf[k - 1] >= 0.975]
    want = [float(max(lows)) if lows else None, float(min(highs)) if highs else None]
    values = np.random.default_rng(n).permutation(np.arange(1, n + 1))
    assert rollout.quantile_interval(values, 0.99, 0.95) == want


def test_every_rule_field_reaches_the_cli_and_the_rollout_component():
    """One declaration (RolloutRule): the flags of status/decide/promote and the component's
    parameters carry each field, max_p99_ratio included, with its default."""
    surface = parameters.surface(rollout.RolloutRule)
    assert surface["max_p99_ratio"].default == 1.5
    signature = inspect.signature(rollout_component.python_func).parameters
    assert {n: signature[n].default for n in surface} == {n: p.default for n, p in surface.items()}
    parser = cli.build_parser("rollout")
    sub = next(a for a in parser._actions if a.dest == "command").choices["rollout"]
    for command, by in (("status", []), ("decide", ["--by", "cron"]), ("promote", ["--by", "a"])):
        args = sub.parse_args([command, "churn", *by, "--max-p99-ratio", "2.5"])
        assert args.max_p99_ratio == 2.5
        # not passed: the rollout's recorded rule, else the field's default (judged_by)
        assert sub.parse_args([command, "churn", *by]).max_p99_ratio is None
        assert (
            rollout_command._rule(sub.parse_args([command, "churn", *by]))[0].max_p99_ratio == 1.5
        )
