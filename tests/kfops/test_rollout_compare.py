"""rollout.compare's figures on hand-built events, each against an independent computation: error
counts and Wilson-form confidence sequences, latency percentiles per request, shadow agreement,
the prediction distance (total variation; KS), and the quality difference with its paired
(shadow) or unpaired (canary) confidence sequence. The end-to-end tests judge only obvious cases,
which these figures could be wrong under and still pass (issue #19 review)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kfops import labels, rollout

RULE = rollout.RolloutRule()  # 95 %, planned 200 requests and 100 labelled rows


def _cs_z(n, planned, a=0.025):
    """Waudby-Smith et al. (2024) Gaussian-mixture boundary times sqrt(n), written out here."""
    rho2 = (2 * math.log(1 / a) + math.log(1 + 2 * math.log(1 / a))) / planned
    margin = math.sqrt(2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / a))
    return margin * math.sqrt(n)


DOC = {"champion": "1", "challenger": "2"}


def _event(rid, row, version, role, seconds, prediction=None, error=""):
    text = "" if prediction is None else str(prediction)
    stamp = pd.Timestamp("2026-12-02", tz="UTC")
    value = np.nan if prediction is None else float(prediction)
    return {labels.REQUEST_ID: rid, labels.ROW: row, rollout.CHAMPION: "1",
            rollout.CHALLENGER: "2", rollout.VERSION: version, rollout.ROLE: role,
            rollout.SECONDS: seconds, rollout.ERROR: error, rollout.PREDICTION: text,
            rollout.VALUE: value, rollout.TIMESTAMP: stamp}  # fmt: skip


def _truth(pairs):
    return pd.DataFrame({
        labels.REQUEST_ID: [r for r, _ in pairs], labels.ROW: 0,
        labels.LABEL: [y for _, y in pairs], labels.RECEIVED: pd.Timestamp("2026-12-02", tz="UTC"),
    })  # fmt: skip


@pytest.fixture
def shadow():
    """51 one-row requests: the champion answers all (1 on r0-r29, else 0), the challenger 50
    (1 on r0-r39, else 0) and fails r50; labels: 1 on r0-r34, else 0."""
    rows = []
    for i in range(51):
        rows.append(_event(f"r{i}", 0, "1", "champion", 0.001 * (i + 1), int(i < 30)))
        if i < 50:
            rows.append(_event(f"r{i}", 0, "2", "shadow", 0.002 * (i + 1), int(i < 40)))
    rows.append(_event("r50", -1, "2", "shadow", 0.5, error="ModelError"))
    truth = _truth([(f"r{i}", int(i < 35)) for i in range(51)])
    return pd.DataFrame(rows), truth


def test_shadow_figures_equal_their_definitions(shadow):
    events, truth = shadow
    out = rollout.compare(events, truth, {**DOC, "mode": "shadow"}, "classification", RULE)
    champ, chall = out["champion"], out["challenger"]
    assert (champ["requests"], champ["errors"]) == (51, 0)
    assert (chall["requests"], chall["errors"]) == (51, 1)
    assert chall["error_rate"] == pytest.approx(1 / 51)
    assert chall["error_interval"] == pytest.approx(rollout.wilson(1, 51, _cs_z(51, 200)))
    champ_ms = [1.0 * (i + 1) for i in range(51)]
    chall_ms = [2.0 * (i + 1) for i in range(50)] + [500.0]
    for q in (50, 95, 99):
        assert champ[f"p{q}_ms"] == pytest.approx(np.percentile(champ_ms, q))
        assert chall[f"p{q}_ms"] == pytest.approx(np.percentile(chall_ms, q))
    # both answered r0-r49; they differ on r30-r39
    assert out["agreement"] == {"rows": 50, "rate": pytest.approx(40 / 50)}
    # champion shares 30/51 ones, 21/51 zeros; challenger 40/50 and 10/50
    tv = 0.5 * (abs(30 / 51 - 40 / 50) + abs(21 / 51 - 10 / 50))
    assert out["distance"] == {"kind": "total_variation", "value": pytest.approx(tv)}
    # accuracy: the champion misses r30-r34 (46 of 51), the challenger r35-r39 (45 of 50)
    assert (champ["labelled"], champ["quality"]) == (51, pytest.approx(46 / 51))
    assert (chall["labelled"], chall["quality"]) == (50, pytest.approx(45 / 50))
    # paired on r0-r49: +1 on r30-r34, -1 on r35-r39, 0 elsewhere
    d = np.array([1.0] * 5 + [-1.0] * 5 + [0.0] * 40)
    half = _cs_z(50, 100) * d.std(ddof=1) / math.sqrt(len(d))
    diff = out["quality_difference"]
    assert (diff["rows"], diff["paired"], diff["value"]) == (50, True, pytest.approx(0.0))
    assert diff["interval"] == pytest.approx([-half, half])
    assert rollout.judge(out, rollout.RolloutRule(min_requests=50, min_labelled=50)).decision == (
        "wait"
    )


def test_canary_regression_figures_equal_their_definitions():
    champion = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    challenger = [2.5, 4.0, 6.5, 8.0]
    rows = [_event(f"a{i}", 0, "1", "champion", 0.01, v) for i, v in enumerate(champion)]
    rows += [_event(f"b{i}", 0, "2", "canary", 0.02, v) for i, v in enumerate(challenger)]
    truth_a = [1.5, 2.0, 2.0, 5.0, 5.5, 9.0]
    truth_b = [2.0, 4.5, 6.0, 8.0]
    truth = _truth([(f"a{i}", y) for i, y in enumerate(truth_a)]
                   + [(f"b{i}", y) for i, y in enumerate(truth_b)])  # fmt: skip
    out = rollout.compare(
        pd.DataFrame(rows), truth, {**DOC, "mode": "canary", "share": 0.25}, "regression", RULE
    )
    assert out["agreement"] is None
    ks = stats.ks_2samp(champion, challenger).statistic
    assert out["distance"] == {"kind": "ks", "value": pytest.approx(ks)}
    qa = -np.abs(np.array(champion) - truth_a)  # quality: minus the absolute error
    qb = -np.abs(np.array(challenger) - truth_b)
    assert out["champion"]["quality"] == pytest.approx(qa.mean())
    diff = out["quality_difference"]
    se = math.sqrt(qa.var(ddof=1) / len(qa) + qb.var(ddof=1) / len(qb))
    value = qb.mean() - qa.mean()
    assert (diff["rows"], diff["paired"]) == (4, False)
    assert diff["value"] == pytest.approx(value)
    # 10 labelled requests, split at random by the plan's share: planned min_labelled / share =
    # 100 / 0.25 in all (a share of 0.5 would give 200, min_requests, and hide a mix-up)
    z = _cs_z(10, 400)
    assert diff["interval"] == pytest.approx([value - z * se, value + z * se])
    assert out["intervals"].startswith("anytime-valid") and diff["kind"] == "confidence sequence"
