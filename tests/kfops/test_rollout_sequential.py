"""The rollout rule applied again and again (`kfops rollout decide` on a schedule) keeps its error.

Simulated rollouts: labelled rows arrive in batches and the rule (rollout.judge) looks after
each batch, stopping at the first promote or abort. Under the null (two equally good models,
accuracy 0.8) a promote is a false promote; the rule may make one at most (1 - confidence) / 2
= 2.5 % of the time, however many looks. Each look's rows are drawn as sufficient statistics
(multinomial / binomial counts), seeded, so the whole file runs in a few seconds.

Monte Carlo allowance: with SIMS = 4000 rollouts a true rate of 2.5 % is measured with a
standard deviation of 0.25 %; the bound asserted is 2.5 % + 0.75 % (3 sd). The old fixed-n
interval (z = 1.96 at every look) breaks it at 20 looks (about 13 %, issue #19 review: H3).
"""

import functools

import numpy as np
import pytest

from kfops import rollout

SIMS = 4000
ALLOWANCE = 0.0075
P = 0.8  # both models' accuracy under the null
RULE = rollout.RolloutRule(min_requests=1, min_labelled=100)
LAST = 2000  # challenger labelled rows at the last look
LOOKS = {1: [LAST], 5: list(range(400, LAST + 1, 400)), 20: list(range(100, LAST + 1, 100))}


@functools.cache  # no errors on either side: the same few thousand sides again and again
def _side(n, labelled):
    return {"requests": n, "errors": 0, "labelled": labelled,
            "error_interval": rollout.wilson(0, n, rollout.sequence_z(n, 1, 0.95))}  # fmt: skip


def _verdicts(stats, looks, interval):
    """First promote/abort per simulated rollout (or wait) over its looks, through judge."""
    out = []
    for sim in range(SIMS):
        decision = rollout.WAIT
        for j in range(len(looks)):
            diff, se, t, labelled = (s[sim, j] for s in stats)
            comparison = {
                "mode": "shadow", "champion": _side(int(t), int(t)),
                "challenger": _side(int(labelled), int(labelled)),
                "quality_difference": {"value": diff, "interval": interval(diff, se, t)},
            }  # fmt: skip
            decision = rollout.judge(comparison, RULE).decision
            if decision != rollout.WAIT:
                break
        out.append(decision)
    return np.array(out)


def _paired(looks, p_champion, p_challenger, seed):
    """Shadow: both answer every row; (mean d, se, n, n) at each look, d = b - a per row."""
    rng = np.random.default_rng(seed)
    up, down = p_challenger * (1 - p_champion), p_champion * (1 - p_challenger)
    steps = np.diff([0, *looks])
    counts = rng.multinomial(steps[None, :].repeat(SIMS, 0), [up, down, 1 - up - down])
    plus, minus = counts[..., 0].cumsum(1), counts[..., 1].cumsum(1)
    n = np.array(looks, dtype=float)[None, :].repeat(SIMS, 0)
    mean = (plus - minus) / n
    var = ((plus + minus) - n * mean**2) / (n - 1)
    return mean, np.sqrt(var / n), n, n


def _unpaired(looks, p_champion, p_challenger, seed, share=0.5):
    """Canary: each labelled request answered by one side (share to the challenger);
    (difference of accuracies, se, all labelled rows, challenger's) at each look."""
    rng = np.random.default_rng(seed)
    totals = np.diff([0, *[round(n / share) for n in looks]])
    to_b = rng.binomial(totals[None, :].repeat(SIMS, 0), share)
    ok_b = rng.binomial(to_b, p_challenger).cumsum(1)
    ok_a = rng.binomial(totals[None, :] - to_b, p_champion).cumsum(1)
    nb, na = to_b.cumsum(1).astype(float), (totals[None, :] - to_b).cumsum(1).astype(float)
    qa, qb = ok_a / na, ok_b / nb
    var_a, var_b = ok_a * (1 - qa) / (na - 1), ok_b * (1 - qb) / (nb - 1)
    return qb - qa, np.sqrt(var_a / na + var_b / nb), na + nb, nb


def _sequence(planned):
    return lambda diff, se, t: rollout.quality_interval(diff, se, t, planned, RULE)


def _fixed_n(diff, se, t):  # the rule before: one look's normal interval at every look
    z = rollout.z_of(RULE.confidence)
    return [diff - z * se, diff + z * se]


MODES = {
    "shadow": (_paired, RULE.min_labelled),
    "canary": (_unpaired, RULE.min_labelled / 0.5),  # rollout._planned_pairs at share 0.5
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("k", list(LOOKS))
def test_equal_models_are_falsely_promoted_at_most_alpha_over_two_however_many_looks(mode, k):
    simulate, planned = MODES[mode]
    stats = simulate(LOOKS[k], P, P, seed=k)
    promoted = np.mean(_verdicts(stats, LOOKS[k], _sequence(planned)) == rollout.PROMOTE)
    assert promoted <= (1 - RULE.confidence) / 2 + ALLOWANCE, f"{mode}, {k} looks: {promoted}"


@pytest.mark.parametrize("mode", list(MODES))
def test_the_fixed_n_interval_inflates_the_false_promote_rate_at_twenty_looks(mode):
    """What the rule did before: the same simulation, 1.96 standard errors at every look."""
    simulate, _ = MODES[mode]
    stats = simulate(LOOKS[20], P, P, seed=20)
    promoted = np.mean(_verdicts(stats, LOOKS[20], _fixed_n) == rollout.PROMOTE)
    assert promoted > 0.06, f"{mode}: {promoted}"  # measured: 0.126 shadow, 0.074 canary


@pytest.mark.parametrize("mode", list(MODES))
def test_a_clearly_better_challenger_is_promoted_and_a_worse_one_aborted_within_1500_rows(mode):
    """Accuracy 0.80 against 0.88: looks every 100 challenger labelled rows up to 1500; 99.4 %
    to 99.6 % decided right by then (94 % by 1000 rows), never the wrong way."""
    simulate, planned = MODES[mode]
    looks = list(range(100, 1501, 100))
    better = _verdicts(simulate(looks, P, 0.88, seed=1), looks, _sequence(planned))
    worse = _verdicts(simulate(looks, 0.88, P, seed=2), looks, _sequence(planned))
    assert np.mean(better == rollout.PROMOTE) >= 0.98, np.mean(better == rollout.PROMOTE)
    assert np.mean(worse == rollout.ABORT) >= 0.98, np.mean(worse == rollout.ABORT)
    assert not np.any(better == rollout.ABORT) and not np.any(worse == rollout.PROMOTE)


def test_error_rate_sequences_stay_real_intervals_at_no_and_all_errors():
    """The proportion's sequence uses p (1 - p) at p itself, not the estimate (0 at k = 0, n)."""
    for n in (1, 10, 200, 5000):
        z = rollout.sequence_z(n, RULE.min_requests, RULE.confidence)
        low, high = rollout.wilson(0, n, z)
        assert low == 0.0 and 0.0 < high < 1.0
        low, high = rollout.wilson(n, n, z)
        assert 0.0 < low < 1.0 and high == 1.0
        # wider than one fixed-n look: it must hold at every n
        assert low < rollout.wilson(n, n, rollout.z_of(RULE.confidence))[0]
