"""The default gate on real trained models (issue 14, item 3): it blesses a good regression judged
per slice, and does not bless a classifier whose decisions are no better than the Dummy's."""

import numpy as np
import pandas as pd
import pytest

from kfops import evaluate, gate, train, validate


def _judge(frame: pd.DataFrame, task: str, slices: tuple[str, ...] = ()) -> gate.Blessing:
    """Train on the first 70% of rows, evaluate on the rest, gate with the default rules."""
    cut = int(len(frame) * 0.7)
    fit, test = frame.iloc[:cut], frame.iloc[cut:]
    sch = validate.infer_schema(fit, "y", task=task)
    cfg = train.TrainConfig(label="y", task=task, estimator="linear", search_iterations=1)
    result = train.train(fit, sch, cfg)
    scored = evaluate.evaluate(
        result.pipeline,
        test,
        evaluate.EvalConfig(label="y", task=task, slice_columns=slices),
        baseline=result.baseline,
    )
    return gate.decide(scored.to_dict(), gate.GateConfig())


def _regression(seed: int, noisy_region: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 2000
    region = rng.choice(["north", "south", "east", "west"], size=n)
    x = rng.normal(size=n)
    y = x + rng.normal(scale=1.0, size=n)  # R2 about 0.5: below the old absolute 0.60 floor
    if noisy_region:  # in one region the label has nothing to do with x
        west = region == "west"
        y[west] = rng.normal(scale=1.5, size=west.sum())
    return pd.DataFrame({"x": x, "region": region, "y": y})


def test_a_good_regression_with_slices_is_blessed():
    blessing = _judge(_regression(0), "regression", slices=("region",))
    slice_checks = [c for c in blessing.checks if c.rule.startswith("slice ")]
    assert len(slice_checks) == 4 and all(c.passed for c in slice_checks)
    assert all("vs overall" in c.rule for c in slice_checks)  # no absolute floor on R2
    assert blessing.blessed, blessing.reasons


def test_a_regression_much_worse_on_one_slice_is_not_blessed():
    blessing = _judge(_regression(1, noisy_region=True), "regression", slices=("region",))
    assert not blessing.blessed
    assert [r.split(":")[0] for r in blessing.reasons] == ["slice region=west vs overall"]


def _majority_positive(seed: int, signal: float) -> pd.DataFrame:
    """85% positives; `signal` sets how well x ranks them."""
    rng = np.random.default_rng(seed)
    n = 3000
    y = (rng.random(n) < 0.85).astype(int)
    x = signal * y + rng.normal(size=n)
    return pd.DataFrame({"x": x, "noise": rng.normal(size=n), "y": y})


def test_a_majority_positive_classifier_no_better_than_the_dummy_at_deciding_is_not_blessed():
    blessing = _judge(_majority_positive(0, signal=0.9), "classification")
    checks = {c.rule: c for c in blessing.checks}
    # It ranks well enough for the threshold-free rules, which alone used to bless it ...
    assert checks["threshold roc_auc"].passed and checks["beats baseline"].passed
    # ... but at its decision threshold it labels (nearly) everyone positive, as the Dummy does.
    assert not checks["beats baseline on f1"].passed
    assert not blessing.blessed


def test_a_majority_positive_classifier_that_decides_better_is_blessed():
    blessing = _judge(_majority_positive(0, signal=3.0), "classification")
    assert blessing.blessed, blessing.reasons
    assert {"beats baseline", "beats baseline on f1"} <= {c.rule for c in blessing.checks}


@pytest.mark.parametrize(("rate", "judged"), [(0.05, True), (0.5, False)])
def test_pr_auc_must_lift_only_on_imbalanced_data(rate, judged):
    candidate = {
        "task": "classification",
        "metrics": {"roc_auc": 0.9, "f1": 0.6, "pr_auc": 0.06},
        "baseline_metrics": {"roc_auc": 0.5, "f1": 0.0, "pr_auc": rate},
    }
    blessing = gate.decide(candidate, gate.GateConfig())
    assert ("beats baseline on pr_auc" in {c.rule for c in blessing.checks}) is judged
    assert blessing.blessed is not judged
