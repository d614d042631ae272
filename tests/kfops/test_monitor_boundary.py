"""The drift decision at its boundaries: per-column scores against scipy, the share rule at
equality, the p-value branch, and builtin:churn with and without the stated drift (issue 15.2).
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from kfops import datasets, monitor
from kfops.monitor import core
from kfops.monitor.evidently_run import ColumnDrift
from kfops.validate import infer
from tests.fixtures.monitoring import make_frame

NUMERIC, CATEGORICAL = ("tenure", "charges", "calls"), ("plan", "region")


def _wasserstein_normed(ref: pd.Series, cur: pd.Series) -> float:
    """Evidently's "wasserstein": W1 distance divided by the reference's (population) std."""
    return stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)


def _jensen_shannon(ref: pd.Series, cur: pd.Series) -> float:
    """Jensen-Shannon distance (natural log) between the two category shares."""
    keys = sorted(set(ref) | set(cur))
    shares = [s.value_counts(normalize=True).reindex(keys, fill_value=0.0) for s in (ref, cur)]
    return float(distance.jensenshannon(shares[0].to_numpy(), shares[1].to_numpy()))


def test_column_scores_equal_scipy_wasserstein_and_jensen_shannon(data_schema):
    # Frames shorter than reference_rows are judged as they are (no quantile summary).
    ref = make_frame(1200, seed=41)
    cur = make_frame(900, seed=42, shift=("charges", "plan"))
    result = monitor.monitor(ref, cur, data_schema, monitor.MonitorConfig(min_rows=100))
    for name in NUMERIC:
        col = result.columns[name]
        assert col.method == "wasserstein" and col.threshold == pytest.approx(0.1)
        assert col.score == pytest.approx(_wasserstein_normed(ref[name], cur[name]), rel=1e-9)
        assert col.drifted == (col.score >= 0.1)
    for name in CATEGORICAL:
        col = result.columns[name]
        assert col.method == "jensenshannon"
        assert col.score == pytest.approx(_jensen_shannon(ref[name], cur[name]), rel=1e-9)
        assert col.drifted == (col.score >= 0.1)
    # The shifted columns drift well past the threshold; the others stay well below it.
    assert set(result.drifted_columns) == {"charges", "plan"}
    assert min(result.columns[c].score for c in ("charges", "plan")) > 0.3
    others = [result.columns[c].score for c in ("tenure", "calls", "region")]
    assert max(others) < 0.08


def test_column_threshold_is_applied_as_configured(data_schema):
    """A column scoring between two thresholds drifts under the lower one only."""
    ref = make_frame(1200, seed=43)
    cur = make_frame(900, seed=44, shift=("charges",))
    score = _wasserstein_normed(ref["charges"], cur["charges"])
    below = monitor.MonitorConfig(min_rows=100, num_threshold=score * 0.9)
    above = monitor.MonitorConfig(min_rows=100, num_threshold=score * 1.1)
    assert monitor.monitor(ref, cur, data_schema, below).columns["charges"].drifted
    assert not monitor.monitor(ref, cur, data_schema, above).columns["charges"].drifted


def test_p_value_method_drifts_when_p_below_threshold(data_schema):
    """KS reports a p-value: small means drift, the opposite direction of a distance."""
    ref = make_frame(1200, seed=45)
    cur = make_frame(900, seed=46, shift=("charges",))
    cfg = monitor.MonitorConfig(min_rows=100, num_method="ks", num_threshold=0.05)
    result = monitor.monitor(ref, cur, data_schema, cfg)
    for name in NUMERIC:
        col = result.columns[name]
        p = stats.ks_2samp(ref[name], cur[name]).pvalue
        assert col.method == "ks" and col.score == pytest.approx(p, rel=1e-6, abs=1e-300)
        assert col.drifted == (p < 0.05)
    assert result.columns["charges"].drifted and result.columns["charges"].score < 1e-10
    # Undrifted numeric columns: a large p-value, not drifted (a distance rule would flip these).
    assert not result.columns["tenure"].drifted and result.columns["tenure"].score > 0.05
    p_tenure = result.columns["tenure"].score
    strict = dataclasses.replace(cfg, num_threshold=min(1.0, p_tenure * 1.01))
    loose = dataclasses.replace(cfg, num_threshold=p_tenure * 0.99)
    assert monitor.monitor(ref, cur, data_schema, strict).columns["tenure"].drifted
    assert not monitor.monitor(ref, cur, data_schema, loose).columns["tenure"].drifted


def _result(drifted: int, total: int = 10) -> core.MonitorResult:
    cols = {
        f"f{i}": ColumnDrift("wasserstein", 0.1, 0.2 if i < drifted else 0.01, i < drifted)
        for i in range(total)
    }
    return core.MonitorResult(
        status=core.JUDGED, retrain=False, reasons=(), notes=(), rows=1000, judged_rows=1000,
        reference_rows=1000, sample_error_bound=0.0, drift_share=drifted / total,
        drifted_columns=tuple(c for c, d in cols.items() if d.drifted), columns=cols,
        prediction_drift={}, quality={}, labelled_rows=0, config={},
    )  # fmt: skip


@pytest.mark.parametrize("threshold", [0.1, 0.2, 0.3, 0.5, 1.0])
def test_decide_retrains_at_share_equal_to_threshold_and_not_below(threshold):
    cfg = monitor.MonitorConfig(drift_share_threshold=threshold)
    at = round(threshold * 10)
    reasons = core.decide(_result(at), cfg)
    assert len(reasons) == 1
    assert reasons[0].startswith(f"drift share {at / 10:.2f} >= threshold {threshold:.2f}")
    assert f"({at} of 10 features drifted" in reasons[0]
    assert core.decide(_result(at - 1), cfg) == ()


def test_default_share_does_not_hinge_on_one_column():
    """Three drifted features of ten retrain even when one of them is lost, one alone does not."""
    cfg = monitor.MonitorConfig()
    assert core.decide(_result(3), cfg) and core.decide(_result(2), cfg)
    assert core.decide(_result(1), cfg) == () and core.decide(_result(0), cfg) == ()


@pytest.fixture(scope="module")
def churn_schema():
    return infer.infer_schema(datasets.churn(1000, seed=999), label="churned")


def _churn_verdict(churn_schema, seed: int, drift: float) -> core.MonitorResult:
    features = churn_schema.feature_names
    ref = datasets.churn(2000, seed=10_000 + seed)[features]
    cur = datasets.churn(1000, seed=seed, drift=drift)[features]
    return monitor.monitor(ref, cur, churn_schema, monitor.MonitorConfig(min_rows=100))


@pytest.mark.parametrize("seed", range(4))
def test_builtin_churn_without_drift_keeps_the_model(churn_schema, seed):
    result = _churn_verdict(churn_schema, seed, 0.0)
    assert result.status == "judged" and not result.retrain, result.reasons
    assert result.drifted_columns == ()


@pytest.mark.parametrize("seed", range(4))
def test_builtin_churn_at_stated_drift_retrains_with_margin(churn_schema, seed):
    result = _churn_verdict(churn_schema, seed, 0.3)
    assert result.retrain, result.columns
    # Three features move (tenure, monthly and total charges); the default share needs two of
    # ten, so one of them scoring near the column threshold cannot flip the decision.
    assert "tenure_months" in result.drifted_columns
    assert result.drift_share >= 0.2
